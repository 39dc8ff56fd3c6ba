{{/* Names, labels and the pieces every service shares. */}}
{{- define "landstack.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "landstack.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Call with (dict "root" $ "component" "stac-api") */}}
{{- define "landstack.componentName" -}}
{{- printf "%s-%s" (include "landstack.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "landstack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "landstack.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "landstack.labels" -}}
{{ include "landstack.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Call with (dict "root" $ "svc" .Values.stacApi) */}}
{{- define "landstack.image" -}}
{{- printf "%s:%s" .svc.image.repository (default .root.Chart.AppVersion .svc.image.tag) -}}
{{- end -}}

{{/* Object-store settings shared by every container (LANDSTACK_ prefix). */}}
{{- define "landstack.storeEnv" -}}
- name: LANDSTACK_STORE_URL
  value: {{ .Values.global.objectStore.url | quote }}
{{- with .Values.global.objectStore.endpointUrl }}
- name: LANDSTACK_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: LANDSTACK_S3_REGION
  value: {{ .Values.global.objectStore.region | default "us-east-1" | quote }}
{{- with .Values.global.objectStore.credentialsSecret }}
- name: LANDSTACK_S3_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ . }}, key: access-key-id}}
- name: LANDSTACK_S3_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ . }}, key: secret-access-key}}
{{- end }}
{{- end -}}

{{- define "landstack.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}
