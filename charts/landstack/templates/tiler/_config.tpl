{{/* Where a web service is reached: https://<ingress host> (http:// without a TLS Secret) when it has
an Ingress, else its Service inside the cluster. Call with (dict "root" $ "component" "tiler" "svc" .Values.tiler) */}}
{{- define "landstack.serviceUrl" -}}
{{- if .svc.ingress.enabled -}}
{{- printf "%s://%s" (ternary "https" "http" (ne .svc.ingress.tlsSecret "")) .svc.ingress.host -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v" (include "landstack.componentName" .) .root.Release.Namespace .svc.service.port -}}
{{- end -}}
{{- end -}}

{{/* The tiler's URL the STAC API writes into its tile links (xyz, wmts, the web map). */}}
{{- define "landstack.tilerUrl" -}}
{{- include "landstack.serviceUrl" (dict "root" . "component" "tiler" "svc" .Values.tiler) -}}
{{- end -}}

{{/* The non-secret settings of the tiler (its ConfigMap; a checksum of it rolls the pods). Values in
tiler.env win over the derived ones, so LANDSTACK_TILER_API_URL can point at another public URL. */}}
{{- define "landstack.tilerConfig" -}}
{{- $cfg := dict
  "LANDSTACK_TILER_HOST" "0.0.0.0"
  "LANDSTACK_TILER_PORT" (toString .Values.tiler.service.port)
  "LANDSTACK_TILER_DB_HOST" (include "landstack.databaseHost" .)
  "LANDSTACK_TILER_DB_PORT" (toString .Values.database.port)
  "LANDSTACK_TILER_DB_NAME" .Values.database.name
  "LANDSTACK_TILER_DB_USER" .Values.database.user
  "LANDSTACK_TILER_S3_REGION" (.Values.global.objectStore.region | default "us-east-1")
-}}
{{- with .Values.global.objectStore.endpointUrl }}
{{- $_ := set $cfg "LANDSTACK_TILER_S3_ENDPOINT_URL" . }}
{{- end }}
{{- if .Values.stacApi.enabled }}
{{- $_ := set $cfg "LANDSTACK_TILER_API_URL" (include "landstack.serviceUrl" (dict "root" . "component" "stac-api" "svc" .Values.stacApi)) }}
{{- end }}
{{- range $k, $v := .Values.tiler.env }}
{{- $_ := set $cfg $k (toString $v) }}
{{- end }}
{{- toYaml $cfg }}
{{- end -}}
