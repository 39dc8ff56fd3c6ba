from landstack.pipelines.cli import main

main()
