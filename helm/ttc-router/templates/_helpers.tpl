{{/* Names, labels and the pieces shared by the Deployment and the sidecar snippet. */}}

{{- define "ttc-router.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ttc-router.fullname" -}}
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

{{- define "ttc-router.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ttc-router.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ttc-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: router
{{- end }}

{{- define "ttc-router.labels" -}}
helm.sh/chart: {{ include "ttc-router.chart" . }}
app.kubernetes.io/name: {{ include "ttc-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ttc-router.redisName" -}}
{{- printf "%s-redis" (include "ttc-router.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ttc-router.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ttc-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "ttc-router.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ttc-router.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ttc-router.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "ttc-router.policyConfigMapName" -}}
{{- default (printf "%s-policy" (include "ttc-router.fullname" .)) .Values.policy.existingConfigMap }}
{{- end }}

{{- define "ttc-router.policyContent" -}}
{{- if .Values.policy.content }}
{{- .Values.policy.content }}
{{- else }}
{{- .Files.Get "files/policy.yaml" }}
{{- end }}
{{- end }}

{{- define "ttc-router.listenHost" -}}
{{- if eq .Values.mode "sidecar" }}{{ .Values.sidecar.listenHost }}{{ else }}0.0.0.0{{ end }}
{{- end }}

{{/* Fail early on value combinations the schema cannot express. */}}
{{- define "ttc-router.validate" -}}
{{- if and (eq .Values.redis.mode "external") (not .Values.redis.external.existingSecret) }}
{{- fail "redis.mode=external needs redis.external.existingSecret (a Secret holding the Redis URL)" }}
{{- end }}
{{- if eq .Values.redis.mode "embedded" }}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) (eq .Values.mode "sidecar") }}
{{- fail "redis.mode=embedded keeps budgets per pod: use it with one replica, autoscaling off and mode=deployment; otherwise use bundled or external Redis" }}
{{- end }}
{{- end }}
{{- if and .Values.policy.existingSecret (or .Values.policy.existingConfigMap .Values.policy.content) }}
{{- fail "policy.existingSecret replaces the policy ConfigMap: leave policy.existingConfigMap and policy.content empty" }}
{{- end }}
{{- if eq .Values.mode "sidecar" }}
{{- if not .Values.sidecar.gateway.container.image }}
{{- fail "mode=sidecar needs sidecar.gateway.container (name, image, ports) for the gateway the router sits beside" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (eq .Values.sidecar.listenHost "127.0.0.1") }}
{{- fail "mode=sidecar with sidecar.listenHost=127.0.0.1 cannot be scraped: set sidecar.listenHost=0.0.0.0 (with networkPolicy.enabled) or disable metrics.serviceMonitor" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The router's environment: TTC_* settings and secret references (never secret values). */}}
{{- define "ttc-router.env" -}}
- name: TTC_HOST
  value: {{ include "ttc-router.listenHost" . | quote }}
- name: TTC_PORT
  value: {{ .Values.containerPort | quote }}
- name: TTC_POLICY_PATH
  value: {{ printf "%s/%s" (trimSuffix "/" .Values.policy.mountPath) .Values.policy.fileName | quote }}
- name: TTC_DATA_DIR
  value: {{ .Values.dataDir.path | quote }}
- name: TTC_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: TTC_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
- name: TTC_LOG_PROMPTS
  value: {{ .Values.config.logPrompts | quote }}
- name: TTC_REDIS_PREFIX
  value: {{ .Values.config.redisPrefix | quote }}
- name: TTC_BUDGET_FAIL_OPEN
  value: {{ .Values.config.budgetFailOpen | quote }}
- name: TTC_MAX_BODY_BYTES
  value: {{ .Values.config.maxBodyBytes | int64 | quote }}
- name: TTC_MAX_MESSAGES
  value: {{ .Values.config.maxMessages | int64 | quote }}
- name: TTC_MAX_N
  value: {{ .Values.config.maxN | int64 | quote }}
- name: TTC_MAX_TOKENS_LIMIT
  value: {{ .Values.config.maxTokensLimit | int64 | quote }}
- name: TTC_KEEPALIVE_S
  value: {{ .Values.config.keepaliveSeconds | quote }}
- name: TTC_WORKERS
  value: {{ .Values.config.workers | int64 | quote }}
- name: TTC_MAX_INFLIGHT
  value: {{ .Values.config.maxInflight | int64 | quote }}
{{- if .Values.config.tenantHeader }}
- name: TTC_TENANT_HEADER
  value: {{ .Values.config.tenantHeader | quote }}
{{- end }}
{{- if eq .Values.redis.mode "external" }}
- name: TTC_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.existingSecret }}
      key: {{ .Values.redis.external.key }}
- name: TTC_REDIS_MODE
  value: {{ .Values.redis.external.mode | quote }}
- name: TTC_REDIS_SENTINEL_SERVICE
  value: {{ .Values.redis.external.sentinelService | quote }}
{{- else if eq .Values.redis.mode "bundled" }}
{{- if .Values.redis.bundled.auth.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.bundled.auth.existingSecret }}
      key: {{ .Values.redis.bundled.auth.key }}
- name: TTC_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "ttc-router.redisName" .) | quote }}
{{- else }}
- name: TTC_REDIS_URL
  value: {{ printf "redis://%s:6379/0" (include "ttc-router.redisName" .) | quote }}
{{- end }}
{{- end }}
{{- if .Values.secrets.adminToken.existingSecret }}
- name: TTC_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.adminToken.existingSecret }}
      key: {{ .Values.secrets.adminToken.key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Probes: HTTP in deployment mode; exec inside the container when bound to loopback. */}}
{{- define "ttc-router.probeAction" -}}
{{- $root := index . 0 -}}
{{- $path := index . 1 -}}
{{- if and (eq $root.Values.mode "sidecar") (eq $root.Values.sidecar.listenHost "127.0.0.1") }}
exec:
  command:
    - python
    - -c
    - {{ printf "import os,urllib.request;urllib.request.urlopen('http://127.0.0.1:'+os.environ['TTC_PORT']+'%s',timeout=2)" $path | quote }}
{{- else }}
httpGet:
  path: {{ $path }}
  port: http
{{- end }}
{{- end }}

{{/* The router container: the same spec in deployment and sidecar mode. */}}
{{- define "ttc-router.container" -}}
- name: router
  image: {{ include "ttc-router.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve"]
  ports:
    - name: http
      containerPort: {{ .Values.containerPort }}
      protocol: TCP
  env:
    {{- include "ttc-router.env" . | nindent 4 }}
  {{- with .Values.secrets.upstreamApiKeys.existingSecrets }}
  envFrom:
    {{- range . }}
    - secretRef:
        name: {{ . }}
    {{- end }}
  {{- end }}
  startupProbe:
    {{- include "ttc-router.probeAction" (list . "/healthz") | trim | nindent 4 }}
    periodSeconds: {{ .Values.probes.startup.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.startup.failureThreshold }}
  livenessProbe:
    {{- include "ttc-router.probeAction" (list . "/healthz") | trim | nindent 4 }}
    periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
  readinessProbe:
    {{- include "ttc-router.probeAction" (list . "/readyz") | trim | nindent 4 }}
    periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: policy
      mountPath: {{ .Values.policy.mountPath }}
      readOnly: true
    - name: data
      mountPath: {{ .Values.dataDir.path }}
    - name: tmp
      mountPath: /tmp
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* Volumes of the router: the policy directory, from a ConfigMap or (key hashes and all) a Secret. */}}
{{- define "ttc-router.volumes" -}}
- name: policy
  projected:
    sources:
      {{- if .Values.policy.existingSecret }}
      - secret:
          name: {{ .Values.policy.existingSecret }}
          items:
            - key: {{ .Values.policy.fileName }}
              path: {{ .Values.policy.fileName }}
      {{- else }}
      - configMap:
          name: {{ include "ttc-router.policyConfigMapName" . }}
          items:
            - key: {{ .Values.policy.fileName }}
              path: {{ .Values.policy.fileName }}
      {{- end }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.dataDir.sizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
