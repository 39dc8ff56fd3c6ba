"""landstack.model_server: KServe model servers for TempCNN, U-Net and the impervious CNN."""
