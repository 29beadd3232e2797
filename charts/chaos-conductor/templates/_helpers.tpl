{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "chaos-conductor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. A release named like the chart gets just the chart name.
*/}}
{{- define "chaos-conductor.fullname" -}}
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

{{- define "chaos-conductor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "chaos-conductor.labels" -}}
helm.sh/chart: {{ include "chaos-conductor.chart" . }}
{{ include "chaos-conductor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: chaos-conductor
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels: never change them between releases (Deployment selectors are immutable). */}}
{{- define "chaos-conductor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chaos-conductor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "chaos-conductor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chaos-conductor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: asked for, or needed because replicas > 1. */}}
{{- define "chaos-conductor.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ else }}false{{ end }}
{{- end }}

{{- define "chaos-conductor.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The controller's permissions, shared by the ClusterRole (all namespaces) and the Role
(watchNamespace). Exactly what the code calls; no wildcards, no Secrets (see rbac.secretsReadNamespaces),
no pods/exec.
*/}}
{{- define "chaos-conductor.rules" -}}
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosengines"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosengines/status"]
  verbs: ["patch"]
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosexperiments"]
  verbs: ["get"]
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosresults"]
  verbs: ["get", "list", "watch", "update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch", "get"]
- apiGroups: [""]
  resources: ["configmaps", "serviceaccounts"]
  verbs: ["get"]
# The launch-time re-check of an engine's recorded author (src/controller/author.rs): a
# LocalSubjectAccessReview in the engine's namespace (namespaced, so the watchNamespace Role can
# grant it too).
- apiGroups: ["authorization.k8s.io"]
  resources: ["localsubjectaccessreviews"]
  verbs: ["create"]
{{- if .Values.schedules }}
# ChaosSchedules (src/scheduler): engines are created per run and deleted beyond historyLimit;
# finalizers/update lets the engines carry blockOwnerDeletion owner references on clusters with
# the OwnerReferencesPermissionEnforcement admission plugin.
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosschedules"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosschedules/status"]
  verbs: ["patch"]
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosschedules/finalizers"]
  verbs: ["update"]
- apiGroups: ["litmuschaos.io"]
  resources: ["chaosengines"]
  verbs: ["create", "delete"]
{{- end }}
{{- end }}

{{/* The cluster-wide kill switch ConfigMap: <fullname>-halt in the release namespace. */}}
{{- define "chaos-conductor.haltConfigMap" -}}
{{- printf "%s-halt" (include "chaos-conductor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
