{{/*
Helpers. Each takes a context with .Values (this chart's values) and
.Release, so that an app chart that has fusebox as a dependency can call
the sidecar templates with (dict "Values" .Values.fusebox "Release" .Release).
None of them reads .Chart or .Files, which are the caller's there.
*/}}

{{- define "fusebox.name" -}}
{{- default "fusebox" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fusebox.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "fusebox.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* fusebox.labels: the labels of every object; takes (dict "ctx" . "component" "coordinator"). */}}
{{- define "fusebox.labels" -}}
{{ include "fusebox.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: fusebox
{{- end -}}

{{/* fusebox.selectorLabels: the labels a selector matches; same argument. */}}
{{- define "fusebox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fusebox.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fusebox.coordinatorName" -}}
{{- printf "%s-coordinator" (include "fusebox.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fusebox.sidecarConfigMapName" -}}
{{- default (printf "%s-sidecar" (include "fusebox.fullname" .) | trunc 63 | trimSuffix "-") .Values.sidecar.existingConfigMap -}}
{{- end -}}

{{- define "fusebox.coordinatorConfigMapName" -}}
{{- default (include "fusebox.coordinatorName" .) .Values.coordinator.existingConfigMap -}}
{{- end -}}

{{- define "fusebox.tokensSecretName" -}}
{{- default (printf "%s-tokens" (include "fusebox.fullname" .) | trunc 63 | trimSuffix "-") .Values.auth.existingSecret -}}
{{- end -}}

{{/* The Secret the chart makes for redis.url (unused with existingSecret or password). */}}
{{- define "fusebox.redisSecretName" -}}
{{- printf "%s-redis" (include "fusebox.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fusebox.apiKeysSecretName" -}}
{{- printf "%s-api-keys" (include "fusebox.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* fusebox.image: takes (dict "root" . "image" .Values.coordinator.image). */}}
{{- define "fusebox.image" -}}
{{- $repo := .image.repository -}}
{{- with .root.Values.image.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (toString .image.tag) -}}
{{- end -}}

{{- define "fusebox.pullPolicy" -}}
{{- default .root.Values.image.pullPolicy .image.pullPolicy -}}
{{- end -}}

{{/* fusebox.yaml: a config file's text: .text (a string) if set, else .value (a map) as YAML, else .default. */}}
{{- define "fusebox.yaml" -}}
{{- if .text -}}
{{- .text -}}
{{- else if .value -}}
{{- toYaml .value -}}
{{- else -}}
{{- .default -}}
{{- end -}}
{{- end -}}

{{/*
fusebox.redisEnv: FUSEBOX_REDIS_URL (and the passwords it refers to) as
env entries. The URL is never a plain value unless its password comes
from a Secret by $(VAR) reference.
*/}}
{{- define "fusebox.redisEnv" -}}
{{- $r := .Values.redis -}}
{{- if $r.existingSecret }}
- name: FUSEBOX_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.existingSecretKey }}
{{- else if or $r.password.existingSecret $r.sentinelPassword.existingSecret }}
{{- $url := required "redis.url is required" $r.url -}}
{{- $sentinel := hasPrefix "redis+sentinel://" $url -}}
{{- if $r.password.existingSecret }}
- name: FUSEBOX_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.password.existingSecret }}
      key: {{ $r.password.key }}
{{- if not (contains "$(FUSEBOX_REDIS_PASSWORD)" $url) }}
{{- if $sentinel }}
{{- $url = printf "%s%spassword=$(FUSEBOX_REDIS_PASSWORD)" $url (ternary "&" "?" (contains "?" $url)) -}}
{{- else }}
{{- $rest := regexReplaceAll "^[a-z+]+://" $url "" -}}
{{- if contains "@" (regexReplaceAll "[/?].*$" $rest "") }}
{{- fail "redis.url has a user:pass already: write $(FUSEBOX_REDIS_PASSWORD) where the password goes" }}
{{- end }}
{{- $url = regexReplaceAll "^([a-z+]+://)" $url "${1}:$(FUSEBOX_REDIS_PASSWORD)@" -}}
{{- end }}
{{- end }}
{{- end }}
{{- if $r.sentinelPassword.existingSecret }}
{{- if not $sentinel }}
{{- fail "redis.sentinelPassword needs a redis+sentinel:// URL" }}
{{- end }}
- name: FUSEBOX_REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.sentinelPassword.existingSecret }}
      key: {{ $r.sentinelPassword.key }}
{{- if not (contains "$(FUSEBOX_REDIS_SENTINEL_PASSWORD)" $url) }}
{{- if contains "@" (regexReplaceAll "[/?].*$" (regexReplaceAll "^[a-z+]+://" $url "") "") }}
{{- fail "redis.url has a user:pass already: write $(FUSEBOX_REDIS_SENTINEL_PASSWORD) where the sentinels' password goes" }}
{{- end }}
{{- $url = regexReplaceAll "^(redis\\+sentinel://)" $url "${1}:$(FUSEBOX_REDIS_SENTINEL_PASSWORD)@" -}}
{{- end }}
{{- end }}
- name: FUSEBOX_REDIS_URL
  value: {{ $url | quote }}
{{- else }}
- name: FUSEBOX_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "fusebox.redisSecretName" . }}
      key: redis-url
{{- end }}
{{- end -}}

{{/* fusebox.apiKeysEnv: the provider API keys as env entries. */}}
{{- define "fusebox.apiKeysEnv" -}}
{{- range .Values.apiKeys.fromSecrets }}
- name: {{ required "apiKeys.fromSecrets[].name is required" .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "apiKeys.fromSecrets %s: secretName is required" .name) .secretName }}
      key: {{ required (printf "apiKeys.fromSecrets %s: key is required" .name) .key }}
{{- end }}
{{- $secret := include "fusebox.apiKeysSecretName" . -}}
{{- range $name, $_ := .Values.apiKeys.values }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $name }}
{{- end }}
{{- end -}}

{{- define "fusebox.apiKeysEnvFrom" -}}
{{- with .Values.apiKeys.existingSecret }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end -}}

{{/*
fusebox.checkEnv: fails unless every variable named in .names comes from
apiKeys (or from .extra, plain env entries), when apiKeys.existingSecret
does not make that unknowable; takes (dict "root" . "names" (list ...) "what" "...").
*/}}
{{- define "fusebox.checkEnv" -}}
{{- $root := .root -}}
{{- if not $root.Values.apiKeys.existingSecret -}}
{{- $have := dict -}}
{{- range $root.Values.apiKeys.fromSecrets }}{{ $_ := set $have .name true }}{{ end -}}
{{- range $k, $_ := $root.Values.apiKeys.values }}{{ $_ := set $have $k true }}{{ end -}}
{{- range .extra }}{{ $_ := set $have .name true }}{{ end -}}
{{- range .names -}}
{{- if not (hasKey $have .) -}}
{{- fail (printf "%s names %s: set it in apiKeys (existingSecret, fromSecrets or values)" $.what .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fusebox.coordinatorURL" -}}
{{- default (printf "http://%s.%s.svc:%v" (include "fusebox.coordinatorName" .) .Release.Namespace .Values.coordinator.service.port) .Values.sidecar.coordinatorURL -}}
{{- end -}}
