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
The projected service-account token of auth.serviceAccountToken: its directory and file.
*/}}
{{- define "modelarts-exporter.idTokenDir" -}}
/var/run/secrets/modelarts-exporter
{{- end }}
{{- define "modelarts-exporter.idTokenFile" -}}
{{- include "modelarts-exporter.idTokenDir" . }}/id-token
{{- end }}

{{/*
Fails on workload identity settings that cannot work: a mode without what it needs, an
id token exchange without the projected token to exchange.
*/}}
{{- define "modelarts-exporter.checkWorkloadIdentity" -}}
{{- $auth := .Values.auth }}
{{- $token := $auth.serviceAccountToken.enabled }}
{{- if and (eq $auth.mode "idp") (not $auth.idp.id) }}
{{- fail "auth.mode=idp needs auth.idp.id, the IAM identity provider of the cluster's OIDC issuer" }}
{{- end }}
{{- if and $auth.idp.id (not $token) }}
{{- fail "auth.idp.id needs auth.serviceAccountToken.enabled: the projected token is the id token" }}
{{- end }}
{{- $oidc := $auth.oidc }}
{{- if and (or (eq $auth.mode "oidc-sts") $oidc.providerUrn $oidc.agencyUrn) (not (and $oidc.providerUrn $oidc.agencyUrn)) }}
{{- fail "auth.mode=oidc-sts needs auth.oidc.providerUrn and auth.oidc.agencyUrn" }}
{{- end }}
{{- if and $oidc.providerUrn (not $token) }}
{{- fail "auth.oidc needs auth.serviceAccountToken.enabled: the projected token is the id token" }}
{{- end }}
{{- if and $auth.podIdentity.tokenFile (not (or $auth.podIdentity.credentialsUri (eq $auth.mode "pod-identity"))) }}
{{- fail "auth.podIdentity.tokenFile needs auth.podIdentity.credentialsUri or auth.mode=pod-identity" }}
{{- end }}
{{- end }}

{{/*
Directory of the targets file (a ConfigMap), its file, and the directory under which
each Secret of targetSecrets is mounted (in a directory named after it).
*/}}
{{- define "modelarts-exporter.targetsDir" -}}
/etc/modelarts-exporter/targets
{{- end }}
{{- define "modelarts-exporter.targetsFile" -}}
{{- include "modelarts-exporter.targetsDir" . }}/targets.yml
{{- end }}
{{- define "modelarts-exporter.targetSecretsDir" -}}
/etc/modelarts-exporter/secrets
{{- end }}

{{/*
Directory the web configuration (webConfig.existingSecret, and webConfig.tlsSecret) is
mounted at.
*/}}
{{- define "modelarts-exporter.webConfigDir" -}}
/etc/modelarts-exporter/web
{{- end }}

{{/*
The targets file: the exporter's own format, as the targets value holds it.
*/}}
{{- define "modelarts-exporter.targetsFileContent" -}}
# Generated by the Helm chart from the value `targets`; the format is the exporter's
# (--config.file). Check it with: modelarts-exporter --config.check --config.file FILE
targets:
{{- range .Values.targets }}
  - name: {{ toYaml .name }}
    {{- with omit . "name" }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end }}

{{/*
Fails on targets that cannot work: with config.demo or a single-project setting (the
targets file replaces those: each target has its own), a name or project used twice, a
target without a region or endpoint, a {file: ...} under the target secrets' directory
that no Secret of targetSecrets provides. The schema checks each field.
*/}}
{{- define "modelarts-exporter.checkTargets" -}}
{{- $v := .Values }}
{{- if $v.targets }}
{{- $perTarget := dict
  "projectId" "project_id"
  "region" "region"
  "endpoint" "endpoint"
  "iamEndpoint" "iam_endpoint"
  "api" "api"
  "showSelf" "show_self"
  "poolId" "pool_id"
  "workspaceId" "workspace_id" }}
{{- range $key := keys $perTarget | sortAlpha }}
{{- $value := get $v.config $key }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
{{- fail (printf "config.%s is a setting of one project; with targets, set %s in each target instead" $key (get $perTarget $key)) }}
{{- end }}
{{- end }}
{{- if $v.config.demo }}
{{- fail "config.demo and targets are exclusive: the demo exports a simulated fleet only" }}
{{- end }}
{{- $dir := printf "%s/" (include "modelarts-exporter.targetSecretsDir" .) }}
{{- $mounted := list }}
{{- range $v.targetSecrets }}
{{- if ne (.as | default "file") "env" }}
{{- if has .name $mounted }}
{{- fail (printf "targetSecrets: %s is listed twice as files; list each Secret once" .name) }}
{{- end }}
{{- $mounted = append $mounted .name }}
{{- end }}
{{- end }}
{{- $names := list }}
{{- $projects := list }}
{{- range $i, $t := $v.targets }}
{{- if has $t.name $names }}
{{- fail (printf "targets[%d]: the name %s is used twice; names must be unique" $i $t.name) }}
{{- end }}
{{- if and $t.project_id (has $t.project_id $projects) }}
{{- fail (printf "targets[%d] (%s): project_id %s is used twice; each project once" $i $t.name $t.project_id) }}
{{- end }}
{{- $names = append $names $t.name }}
{{- $projects = append $projects $t.project_id }}
{{- if not (or $t.region $t.endpoint) }}
{{- fail (printf "targets[%d] (%s) has no region: set its region (or endpoint)" $i $t.name) }}
{{- end }}
{{- range $field, $ref := ($t.auth | default dict) }}
{{- if and (kindIs "map" $ref) (hasKey $ref "file") (hasPrefix $dir $ref.file) }}
{{- $secret := trimPrefix $dir $ref.file | splitList "/" | first }}
{{- if not (has $secret $mounted) }}
{{- fail (printf "targets[%d] (%s).auth.%s: %s is in no Secret of targetSecrets: add {name: %s}" $i $t.name $field $ref.file $secret) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- else }}
{{- if $v.targetSecrets }}
{{- fail "targetSecrets is set but targets is empty: they hold the targets' credentials" }}
{{- end }}
{{- if $v.serviceMonitor.probeTargets }}
{{- fail "serviceMonitor.probeTargets needs targets: it scrapes /probe once per target" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Fails on web settings that cannot work.
*/}}
{{- define "modelarts-exporter.checkWebConfig" -}}
{{- $web := .Values.webConfig }}
{{- $monitor := .Values.serviceMonitor }}
{{- if not $web.existingSecret }}
{{- range $name := list "tlsSecret" "tls" "requireClientCert" }}
{{- if get $web $name }}
{{- fail (printf "webConfig.%s needs webConfig.existingSecret, the Secret with the web configuration" $name) }}
{{- end }}
{{- end }}
{{- if $monitor.basicAuth }}
{{- fail "serviceMonitor.basicAuth needs webConfig.existingSecret: without a web configuration the exporter asks for no password" }}
{{- end }}
{{- end }}
{{- if and $web.requireClientCert (not $web.tls) }}
{{- fail "webConfig.requireClientCert needs webConfig.tls: client certificates come with TLS" }}
{{- end }}
{{- if and $monitor.tlsConfig (not $web.tls) }}
{{- fail "serviceMonitor.tlsConfig needs webConfig.tls: the scrape is plain HTTP otherwise" }}
{{- end }}
{{- if and $monitor.basicAuth (not (and $monitor.basicAuth.username $monitor.basicAuth.password)) }}
{{- fail "serviceMonitor.basicAuth needs both username and password (Secret key selectors)" }}
{{- end }}
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
api: MODELARTS_EXPORTER_API
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
  "ecs" (list)
  "idp" (list)
  "oidc-sts" (list)
  "pod-identity" (list)
  "credentials-file" (list) }}
{{- $optional := dict
  "auto" (keys $env)
  "aksk" (list "securityToken")
  "iam" (list)
  "token" (list)
  "ecs" (list)
  "idp" (list)
  "oidc-sts" (list)
  "pod-identity" (list)
  "credentials-file" (list) }}
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

{{/*
Labels of the `helm test` pod: the release's, but not its selector labels (the Service,
the Deployment's ReplicaSet and the PodDisruptionBudget must never select it).
*/}}
{{- define "modelarts-exporter.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "modelarts-exporter.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- define "modelarts-exporter.testLabels" -}}
helm.sh/chart: {{ include "modelarts-exporter.chart" . }}
{{ include "modelarts-exporter.testSelectorLabels" . }}
app.kubernetes.io/version: {{ include "modelarts-exporter.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: test
app.kubernetes.io/part-of: modelarts-exporter
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pods of the workload: sharding.shards when sharded, else replicaCount.
*/}}
{{- define "modelarts-exporter.replicas" -}}
{{- if .Values.sharding.enabled }}
{{- int .Values.sharding.shards }}
{{- else }}
{{- int .Values.replicaCount }}
{{- end }}
{{- end }}

{{/*
The headless Service that governs the sharded StatefulSet, and the label that tells it
apart from the Service Prometheus scrapes.
*/}}
{{- define "modelarts-exporter.headlessServiceName" -}}
{{- printf "%s-headless" (include "modelarts-exporter.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}
{{- define "modelarts-exporter.headlessLabel" -}}
modelarts-exporter/headless
{{- end }}

{{/*
Fails on sharding that cannot work: no targets to share, a Kubernetes without the
pod-index label (1.28), or /probe endpoints that every shard would answer for targets it
does not hold.
*/}}
{{- define "modelarts-exporter.checkSharding" -}}
{{- if .Values.sharding.enabled }}
{{- if not .Values.targets }}
{{- fail "sharding.enabled needs targets: the shards share the targets file's targets" }}
{{- end }}
{{- if semverCompare "<1.28.0-0" .Capabilities.KubeVersion.Version }}
{{- fail (printf "sharding.enabled needs Kubernetes 1.28 or later (the pod label apps.kubernetes.io/pod-index); this is %s" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if .Values.serviceMonitor.probeTargets }}
{{- fail "sharding.enabled and serviceMonitor.probeTargets are exclusive: each shard serves its own targets at /metrics" }}
{{- end }}
{{- end }}
{{- end }}
