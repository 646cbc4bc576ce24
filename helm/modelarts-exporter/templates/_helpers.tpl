{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "modelarts-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: the release name, suffixed with the chart name
unless it already contains it.
*/}}
{{- define "modelarts-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "modelarts-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "modelarts-exporter.labels" -}}
helm.sh/chart: {{ include "modelarts-exporter.chart" . }}
{{ include "modelarts-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ include "modelarts-exporter.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: exporter
app.kubernetes.io/part-of: modelarts-exporter
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels that select the pods; immutable once installed.
*/}}
{{- define "modelarts-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelarts-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the pod runs as.
*/}}
{{- define "modelarts-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelarts-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "modelarts-exporter.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Image reference: repository@digest when a digest is set, else repository:tag.
*/}}
{{- define "modelarts-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "modelarts-exporter.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Port the exporter listens on inside the pod.
*/}}
{{- define "modelarts-exporter.containerPort" -}}
10200
{{- end }}

{{/*
Name of the Secret holding the credentials; empty when there is none.
*/}}
{{- define "modelarts-exporter.secretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if .Values.auth.createSecret }}
{{- include "modelarts-exporter.fullname" . }}
{{- end }}
{{- end }}

{{/*
Directory the credentials are mounted at when auth.secretsAs is "file".
*/}}
{{- define "modelarts-exporter.credentialsDir" -}}
/etc/modelarts-exporter/credentials
{{- end }}

{{/*
Environment variable of each config.* value (the value itself, when set, is the
variable's value).
*/}}
{{- define "modelarts-exporter.configEnvNames" -}}
region: HUAWEICLOUD_SDK_REGION
projectId: HUAWEICLOUD_SDK_PROJECT_ID
endpoint: MODELARTS_EXPORTER_ENDPOINT
iamEndpoint: MODELARTS_EXPORTER_IAM_ENDPOINT
cacheTTL: MODELARTS_EXPORTER_CACHE_TTL
maxStaleness: MODELARTS_EXPORTER_MAX_STALENESS
pageSize: MODELARTS_EXPORTER_PAGE_SIZE
requestTimeout: MODELARTS_EXPORTER_REQUEST_TIMEOUT
refreshBudget: MODELARTS_EXPORTER_REFRESH_BUDGET
showSelf: MODELARTS_EXPORTER_SHOW_SELF
poolId: MODELARTS_EXPORTER_POOL_ID
workspaceId: MODELARTS_EXPORTER_WORKSPACE_ID
logLevel: MODELARTS_EXPORTER_LOG_LEVEL
logFormat: MODELARTS_EXPORTER_LOG_FORMAT
demo: MODELARTS_EXPORTER_DEMO
{{- end }}

{{/*
A value as an environment variable's text. Numbers arrive as float64 from YAML and
JSON: whole ones are printed without exponent or decimals.
*/}}
{{- define "modelarts-exporter.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
The credentials the exporter reads from the Secret, as YAML `credentials: [{name, env,
key, optional}]`: the ones auth.mode needs that are configured. Fails on a combination
that cannot work, so a broken release never installs.
*/}}
{{- define "modelarts-exporter.credentials" -}}
{{- $auth := .Values.auth }}
{{- $env := dict
  "accessKey" "HUAWEICLOUD_SDK_AK"
  "secretKey" "HUAWEICLOUD_SDK_SK"
  "securityToken" "HUAWEICLOUD_SDK_SECURITY_TOKEN"
  "iamPassword" "MODELARTS_EXPORTER_IAM_PASSWORD"
  "token" "MODELARTS_EXPORTER_AUTH_TOKEN" }}
{{- $required := dict
  "auto" (list)
  "aksk" (list "accessKey" "secretKey")
  "iam" (list "iamPassword")
  "token" (list "token")
  "ecs" (list) }}
{{- $optional := dict
  "auto" (keys $env)
  "aksk" (list "securityToken")
  "iam" (list)
  "token" (list)
  "ecs" (list) }}
{{- if and $auth.existingSecret $auth.createSecret }}
{{- fail "auth.existingSecret and auth.createSecret are exclusive: set one" }}
{{- end }}
{{- $fromSecret := or $auth.existingSecret $auth.createSecret }}
{{- if and $fromSecret (eq $auth.secretsAs "file") (eq $auth.mode "auto") }}
{{- fail "auth.secretsAs=file needs an explicit auth.mode (aksk, iam or token), not auto" }}
{{- end }}
{{- if and (eq $auth.mode "iam") (not (and $auth.iam.username $auth.iam.domain)) }}
{{- fail "auth.mode=iam needs auth.iam.username and auth.iam.domain" }}
{{- end }}
{{- $needed := get $required $auth.mode }}
{{- $credentials := list }}
{{- range $name := concat $needed (get $optional $auth.mode) | sortAlpha }}
{{- $isRequired := has $name $needed }}
{{- $key := get $auth.secretKeys $name }}
{{- if $auth.createSecret }}
{{- if not (get $auth.values $name) }}
{{- if $isRequired }}
{{- fail (printf "auth.mode=%s with auth.createSecret needs auth.values.%s" $auth.mode $name) }}
{{- end }}
{{- continue }}
{{- end }}
{{- if not $key }}
{{- fail (printf "auth.values.%s is set but auth.secretKeys.%s is empty" $name $name) }}
{{- end }}
{{- $credentials = append $credentials (dict "name" $name "env" (get $env $name) "key" $key "optional" false) }}
{{- else if $auth.existingSecret }}
{{- if not $key }}
{{- if $isRequired }}
{{- fail (printf "auth.mode=%s needs auth.secretKeys.%s" $auth.mode $name) }}
{{- end }}
{{- continue }}
{{- end }}
{{- $credentials = append $credentials (dict "name" $name "env" (get $env $name) "key" $key "optional" (not $isRequired)) }}
{{- else if $isRequired }}
{{- fail (printf "auth.mode=%s needs credentials: set auth.existingSecret, or auth.createSecret with auth.values" $auth.mode) }}
{{- end }}
{{- end }}
{{- toYaml (dict "credentials" $credentials) }}
{{- end }}

{{/*
Namespace of an optional resource: its own namespace value, else the release's.
Call with (list $ .Values.<part>.namespace).
*/}}
{{- define "modelarts-exporter.namespace" -}}
{{- $root := index . 0 }}
{{- default $root.Release.Namespace (index . 1) }}
{{- end }}
