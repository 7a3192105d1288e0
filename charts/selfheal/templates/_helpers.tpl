{{/* Labels of every object: the kustomize tree's common label, and Helm's own. */}}
{{- define "selfheal.labels" -}}
app.kubernetes.io/part-of: selfheal
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "selfheal.image" -}}
image: {{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- with .Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security Standard, for every pod and container here. */}}
{{- define "selfheal.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532  # secret volumes (mode 0400) readable by the group: the webhook's certificate, the signing key
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{- define "selfheal.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end }}

{{- define "selfheal.webhookHost" -}}
selfheal-operator-webhook.{{ .Release.Namespace }}.svc
{{- end }}
