{{/* Names, labels and the pieces every workload shares. */}}
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
app.kubernetes.io/part-of: landstack
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Call with (dict "root" $ "svc" .Values.stacApi) */}}
{{- define "landstack.image" -}}
{{- printf "%s:%s" .svc.image.repository (default .root.Chart.AppVersion .svc.image.tag) -}}
{{- end -}}

{{/* The pgstac database host: the in-chart StatefulSet's Service or the external host. */}}
{{- define "landstack.databaseHost" -}}
{{- if .Values.database.internal.enabled -}}
{{- include "landstack.componentName" (dict "root" . "component" "postgres") -}}
{{- else -}}
{{- required "database.host is required when database.internal.enabled is false" .Values.database.host -}}
{{- end -}}
{{- end -}}

{{/* Object-store settings of the pipeline steps (LANDSTACK_ prefix, read by landstack.pipelines). */}}
{{- define "landstack.storeEnv" -}}
- name: LANDSTACK_STORE_URL
  value: {{ .Values.global.objectStore.url | quote }}
{{- with .Values.global.objectStore.endpointUrl }}
- name: LANDSTACK_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: LANDSTACK_S3_REGION
  value: {{ .Values.global.objectStore.region | default "us-east-1" | quote }}
{{- with .Values.global.objectStore.existingSecret }}
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

{{/* Pod-level hardening shared by every pod; call with the uid the image runs as. */}}
{{- define "landstack.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "landstack.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The writable /tmp of a read-only container. */}}
{{- define "landstack.tmpVolume" -}}
- name: tmp
  emptyDir: {sizeLimit: 1Gi}
{{- end -}}

{{- define "landstack.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "landstack.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The non-secret settings of the STAC API (its ConfigMap; a checksum of it rolls the pods). */}}
{{- define "landstack.stacApiConfig" -}}
LANDSTACK_API_HOST: "0.0.0.0"
LANDSTACK_API_PORT: {{ .Values.stacApi.service.port | quote }}
LANDSTACK_API_DB_HOST: {{ include "landstack.databaseHost" . | quote }}
LANDSTACK_API_DB_PORT: {{ .Values.database.port | quote }}
LANDSTACK_API_DB_NAME: {{ .Values.database.name | quote }}
LANDSTACK_API_DB_USER: {{ .Values.database.user | quote }}
{{- with .Values.stacApi.auth.oidcJwksUrl }}
LANDSTACK_API_OIDC_JWKS_URL: {{ . | quote }}
{{- end }}
{{- with .Values.stacApi.auth.oidcIssuer }}
LANDSTACK_API_OIDC_ISSUER: {{ . | quote }}
{{- end }}
{{- with .Values.stacApi.auth.oidcAudience }}
LANDSTACK_API_OIDC_AUDIENCE: {{ . | quote }}
{{- end }}
{{- if and .Values.tiler.enabled (not (hasKey .Values.stacApi.env "LANDSTACK_API_TILER_URL")) }}
LANDSTACK_API_TILER_URL: {{ include "landstack.tilerUrl" . | quote }}
{{- end }}
{{- range $k, $v := .Values.stacApi.env }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress rule to the pgstac database (in-chart pods or the external CIDRs). */}}
{{- define "landstack.databaseEgress" -}}
{{- if .Values.database.internal.enabled }}
- to:
    - podSelector:
        matchLabels: {{- include "landstack.selectorLabels" (dict "root" . "component" "postgres") | nindent 10 }}
  ports:
    - {protocol: TCP, port: 5432}
{{- else }}
- {{- with .Values.database.egressCidrs }}
  to:
    {{- range . }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  {{- end }}
  ports:
    - {protocol: TCP, port: {{ .Values.database.port }}}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress rule to the object store. */}}
{{- define "landstack.objectStoreEgress" -}}
- {{- with .Values.global.objectStoreEgress.cidrs }}
  to:
    {{- range . }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  {{- end }}
  ports:
    {{- range .Values.global.objectStoreEgress.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- end -}}
