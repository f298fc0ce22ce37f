{{/*
The sidecar (cmd/agent) for an app's pod. Both templates take a context
with this chart's .Values and the .Release:

  in this chart:                 include "fusebox.sidecarContainer" .
  in a chart that depends on it: include "fusebox.sidecarContainer" (dict "Values" .Values.fusebox "Release" .Release)

"fusebox.sidecarContainer" is one entry of a pod's containers list;
"fusebox.sidecarVolumes" the entries of its volumes list. Both lists
start with "- ", so nindent them at the list's own indentation.
*/}}

{{- define "fusebox.sidecarContainer" -}}
{{- $s := .Values.sidecar -}}
{{- $listen := required "sidecar.listen is required" $s.listen -}}
{{- $host := regexReplaceAll ":[0-9]+$" $listen "" -}}
{{- $port := regexFind "[0-9]+$" $listen -}}
{{- if not $port }}{{ fail (printf "sidecar.listen %q: want host:port" $listen) }}{{ end -}}
{{- $loopback := has $host (list "127.0.0.1" "localhost" "[::1]") -}}
{{- $tokenSecret := $s.token.secretName -}}
{{- $tokenKey := $s.token.key -}}
{{- if not $tokenSecret -}}
{{- if .Values.auth.existingSecret -}}
{{- fail "auth.existingSecret is set: name the sidecar's agent token with sidecar.token.secretName and sidecar.token.key" -}}
{{- end -}}
{{- $found := false -}}
{{- range .Values.auth.tokens -}}
{{- if eq .name $s.token.tokenName -}}
{{- if ne .role "agent" -}}
{{- fail (printf "sidecar.token.tokenName %s has role %s: the sidecar needs an agent token" .name .role) -}}
{{- end -}}
{{- $found = true -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "sidecar.token.tokenName %q is not in auth.tokens" (toString $s.token.tokenName)) -}}
{{- end -}}
{{- $tokenSecret = include "fusebox.tokensSecretName" . -}}
{{- $tokenKey = printf "token-%s" $s.token.tokenName -}}
{{- end -}}
- name: fusebox-sidecar
  image: {{ include "fusebox.image" (dict "root" . "image" $s.image) }}
  imagePullPolicy: {{ include "fusebox.pullPolicy" (dict "root" . "image" $s.image) }}
  env:
    - name: FUSEBOX_AGENT_ID
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: FUSEBOX_AGENT_CONFIG
      value: /etc/fusebox/sidecar.yaml
    - name: FUSEBOX_AGENT_LISTEN
      value: {{ $listen | quote }}
    - name: FUSEBOX_COORDINATOR_URL
      value: {{ include "fusebox.coordinatorURL" . | quote }}
    - name: FUSEBOX_PREFIX
      value: {{ .Values.prefix | quote }}
    - name: FUSEBOX_LOG_FORMAT
      value: {{ $s.logFormat | quote }}
    {{- with $s.drainTimeout }}
    - name: FUSEBOX_DRAIN_TIMEOUT
      value: {{ . | quote }}
    {{- end }}
    {{- with $s.resyncInterval }}
    - name: FUSEBOX_RESYNC_INTERVAL
      value: {{ . | quote }}
    {{- end }}
    {{- include "fusebox.redisEnv" . | trim | nindent 4 }}
    - name: FUSEBOX_AGENT_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ required "sidecar.token.secretName" $tokenSecret }}
          key: {{ required "sidecar.token.key is required with sidecar.token.secretName" $tokenKey }}
    {{- with include "fusebox.apiKeysEnv" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $s.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with (include "fusebox.apiKeysEnvFrom" .) }}
  envFrom:
    {{- . | nindent 4 }}
  {{- end }}
  {{- if not $loopback }}
  ports:
    - name: fusebox
      containerPort: {{ $port }}
      protocol: TCP
  readinessProbe:
    httpGet:
      path: /readyz
      port: fusebox
    periodSeconds: 5
  livenessProbe:
    httpGet:
      path: /healthz
      port: fusebox
    periodSeconds: 10
  {{- end }}
  {{- with $s.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $s.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: fusebox-sidecar-config
      mountPath: /etc/fusebox
      readOnly: true
    - name: fusebox-sidecar-tmp
      mountPath: /tmp
{{- end -}}

{{- define "fusebox.sidecarVolumes" -}}
- name: fusebox-sidecar-config
  configMap:
    name: {{ include "fusebox.sidecarConfigMapName" . }}
    items:
      - key: sidecar.yaml
        path: sidecar.yaml
- name: fusebox-sidecar-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- end -}}
