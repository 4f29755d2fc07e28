{{/* Names */}}
{{- define "blockrtc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "blockrtc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "blockrtc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "blockrtc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels for one component: include "blockrtc.selectorLabels" (list . "signaling") */}}
{{- define "blockrtc.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "blockrtc.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "blockrtc.componentLabels" -}}
{{ include "blockrtc.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "blockrtc.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The chart's own Secret (generated values and URLs given as values). */}}
{{- define "blockrtc.secretName" -}}
{{- printf "%s-secrets" (include "blockrtc.fullname" .) -}}
{{- end -}}

{{/* Which backing services are bundled (trial) */}}
{{- define "blockrtc.bundledPostgres" -}}
{{- if and .Values.bundled.postgresql.enabled (not .Values.database.url) (not .Values.database.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "blockrtc.bundledRedis" -}}
{{- if and .Values.bundled.redis.enabled (not .Values.redis.url) (not .Values.redis.existingSecret) (not .Values.redis.clusterNodes) -}}true{{- end -}}
{{- end -}}

{{/* Where each secret value lives: dict name key */}}
{{- define "blockrtc.jwtRef" -}}
name: {{ .Values.secrets.jwt.existingSecret | default (include "blockrtc.secretName" .) }}
key: {{ if .Values.secrets.jwt.existingSecret }}{{ .Values.secrets.jwt.key }}{{ else }}JWT_SECRET{{ end }}
{{- end -}}

{{- define "blockrtc.turnRef" -}}
name: {{ .Values.secrets.turn.existingSecret | default (include "blockrtc.secretName" .) }}
key: {{ if .Values.secrets.turn.existingSecret }}{{ .Values.secrets.turn.key }}{{ else }}TURN_SECRET{{ end }}
{{- end -}}

{{- define "blockrtc.databaseRef" -}}
name: {{ .Values.database.existingSecret | default (include "blockrtc.secretName" .) }}
key: {{ if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}DATABASE_URL{{ end }}
{{- end -}}

{{- define "blockrtc.redisRef" -}}
name: {{ .Values.redis.existingSecret | default (include "blockrtc.secretName" .) }}
key: {{ if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}REDIS_URL{{ end }}
{{- end -}}

{{/* Fails with a clear message on combinations the schema cannot express. */}}
{{- define "blockrtc.validate" -}}
{{- $v := .Values -}}
{{- if and (not $v.database.url) (not $v.database.existingSecret) (not $v.bundled.postgresql.enabled) -}}
{{- fail "PostgreSQL: set database.url or database.existingSecret (managed PostgreSQL), or bundled.postgresql.enabled=true (trial only)" -}}
{{- end -}}
{{- if and (not $v.redis.clusterNodes) (not $v.redis.url) (not $v.redis.existingSecret) (not $v.bundled.redis.enabled) -}}
{{- fail "Redis: set redis.clusterNodes (Redis Cluster), redis.url or redis.existingSecret, or bundled.redis.enabled=true (trial only)" -}}
{{- end -}}
{{- if gt (add (int $v.sfu.portBase) (int $v.sfu.workers)) 65535 -}}
{{- fail "sfu.portBase + sfu.workers exceeds 65535" -}}
{{- end -}}
{{- if le (int $v.presence.staleMs) (int $v.presence.heartbeatMs) -}}
{{- fail "presence.staleMs must be greater than presence.heartbeatMs" -}}
{{- end -}}
{{- if ge (int $v.turn.relayPorts.min) (int $v.turn.relayPorts.max) -}}
{{- fail "turn.relayPorts.min must be below turn.relayPorts.max" -}}
{{- end -}}
{{- if and (eq $v.sfu.announcedAddress.source "value") (not $v.sfu.announcedAddress.value) -}}
{{- fail "sfu.announcedAddress.source=value needs sfu.announcedAddress.value" -}}
{{- end -}}
{{- if and (eq $v.turn.externalIp.source "value") (not $v.turn.externalIp.value) -}}
{{- fail "turn.externalIp.source=value needs turn.externalIp.value" -}}
{{- end -}}
{{- if and (or $v.redis.password.existingSecret $v.redis.tls) (not $v.redis.clusterNodes) -}}
{{- fail "redis.password / redis.tls apply to redis.clusterNodes; a single Redis takes them in its URL (rediss://:password@host:6379)" -}}
{{- end -}}
{{- if and $v.turn.tls.enabled (not $v.turn.tls.secretName) -}}
{{- fail "turn.tls.enabled needs turn.tls.secretName (a kubernetes.io/tls Secret)" -}}
{{- end -}}
{{- if and $v.ingress.enabled $v.ingress.tls.enabled (not $v.ingress.tls.secretName) -}}
{{- fail "ingress.tls.enabled needs ingress.tls.secretName" -}}
{{- end -}}
{{- if and $v.turn.enabled $v.turn.tls.enabled (eq (int $v.turn.tls.port) (int $v.turn.port)) -}}
{{- fail "turn.tls.port must differ from turn.port" -}}
{{- end -}}
{{- if and $v.turn.enabled $v.sfu.enabled $v.sfu.hostNetwork -}}
{{- $sfuMax := add (int $v.sfu.portBase) (int $v.sfu.workers) -}}
{{- if and (lt (int $v.turn.relayPorts.min) $sfuMax) (ge (int $v.turn.relayPorts.max) (int $v.sfu.portBase)) -}}
{{- fail "turn.relayPorts overlap the SFU ports sfu.portBase..sfu.portBase+sfu.workers-1 (both use the media nodes' network)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* TURN_URLS */}}
{{- define "blockrtc.turnUrls" -}}
{{- if .Values.turn.urls -}}
{{- join "," .Values.turn.urls -}}
{{- else -}}
{{- $host := (urlParse .Values.publicOrigin).hostname -}}
{{- printf "turn:%s:%d?transport=udp,turn:%s:%d?transport=tcp" $host (int .Values.turn.port) $host (int .Values.turn.port) -}}
{{- if .Values.turn.tls.enabled -}}
{{- printf ",turns:%s:%d?transport=tcp" $host (int .Values.turn.tls.port) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by signaling, SFU and the migration job. */}}
{{- define "blockrtc.commonEnv" -}}
- name: NODE_ID
  valueFrom:
    fieldRef: { fieldPath: metadata.name }
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: REDIS_KEY_PREFIX
  value: {{ .Values.redisKeyPrefix | quote }}
- name: PRESENCE_HEARTBEAT_MS
  value: {{ .Values.presence.heartbeatMs | int64 | quote }}
- name: PRESENCE_STALE_MS
  value: {{ .Values.presence.staleMs | int64 | quote }}
{{- end -}}

{{- define "blockrtc.redisEnv" -}}
{{- if .Values.redis.clusterNodes -}}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," .Values.redis.clusterNodes | quote }}
{{- with .Values.redis.password.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.redis.password.key }}
{{- end }}
{{- if .Values.redis.tls }}
- name: REDIS_TLS
  value: "true"
{{- end }}
{{- else -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- include "blockrtc.redisRef" . | nindent 6 }}
{{- end -}}
{{- end -}}

{{- define "blockrtc.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "blockrtc.databaseRef" . | nindent 6 }}
{{- end -}}

{{/* env: map -> list, sorted by name */}}
{{- define "blockrtc.envMap" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds = preStop sleep + drain timeout (rounded up) + margin */}}
{{- define "blockrtc.grace" -}}
{{- $drainS := div (add (int .drainTimeoutMs) 999) 1000 -}}
{{- add (int .preStopSleepSeconds) $drainS (int .extraGraceSeconds) -}}
{{- end -}}

{{/* Init container: waits until the bundled PostgreSQL accepts TCP connections. */}}
{{- define "blockrtc.waitForPostgres" -}}
- name: wait-for-postgres
  image: {{ include "blockrtc.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command:
    - node
    - -e
    - |
      const net = require('node:net');
      const [host, port] = [process.env.PGHOST, Number(process.env.PGPORT)];
      const attempt = () => {
        const s = net.connect({ host, port }, () => { s.end(); process.exit(0); });
        s.on('error', () => { console.log(`waiting for ${host}:${port}`); setTimeout(attempt, 2000); });
      };
      attempt();
  env:
    - name: PGHOST
      value: {{ printf "%s-postgresql" (include "blockrtc.fullname" .) }}
    - name: PGPORT
      value: "5432"
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.initResources | nindent 4 }}
{{- end -}}

{{/*
Init container for the "nodeExternalIP" address source: reads the Node object's ExternalIP
with the pod's service account and writes it to /run/blockrtc/address.
*/}}
{{- define "blockrtc.addressInit" -}}
- name: resolve-address
  image: {{ include "blockrtc.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: [node, /scripts/node-external-ip.mjs, /run/blockrtc/address]
  env:
    - name: NODE_NAME
      valueFrom:
        fieldRef: { fieldPath: spec.nodeName }
  volumeMounts:
    - { name: scripts, mountPath: /scripts, readOnly: true }
    - { name: run, mountPath: /run/blockrtc }
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.initResources | nindent 4 }}
{{- end -}}

{{- define "blockrtc.needsNodeReader" -}}
{{- if or (and .Values.sfu.enabled (eq .Values.sfu.announcedAddress.source "nodeExternalIP")) (and .Values.turn.enabled (eq .Values.turn.externalIp.source "nodeExternalIP")) -}}true{{- end -}}
{{- end -}}

{{- define "blockrtc.ingressHost" -}}
{{- .Values.ingress.host | default (urlParse .Values.publicOrigin).hostname -}}
{{- end -}}
