{{/* Chart name, truncated to a DNS label. */}}
{{- define "lakeops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name when it already contains the chart name, else <release>-<chart>.
Cluster-scoped objects (ClusterRole, ClusterRoleBinding) are named after it, so two releases
never collide.
*/}}
{{- define "lakeops.fullname" -}}
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

{{- define "lakeops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lakeops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lakeops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "lakeops.labels" -}}
helm.sh/chart: {{ include "lakeops.chart" . }}
{{ include "lakeops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "lakeops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lakeops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The single watched namespace, or "" for all namespaces. The binary takes one
--watch-namespace, so more than one fails rendering.
*/}}
{{- define "lakeops.watchNamespace" -}}
{{- $ns := .Values.watchNamespaces | default list }}
{{- if gt (len $ns) 1 }}
{{- fail (printf "watchNamespaces: only one namespace is supported for now (the controller takes a single --watch-namespace), got %d: %s" (len $ns) (join ", " $ns)) }}
{{- end }}
{{- if eq (len $ns) 1 }}{{ first $ns }}{{ end }}
{{- end }}

{{/* The RBAC rules the controller needs, nothing more: no secrets, no wildcards, no leases. */}}
{{- define "lakeops.rules" -}}
- apiGroups: ["lakeops.dev"]
  resources: ["datalakes", "etlfunctions", "backuppolicies", "etlpipelines"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["lakeops.dev"]
  resources: ["datalakes/status", "etlfunctions/status", "backuppolicies/status", "etlpipelines/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["lakeops.dev"]
  resources: ["datalakes/finalizers", "etlfunctions/finalizers", "backuppolicies/finalizers", "etlpipelines/finalizers"]
  verbs: ["update", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Cluster-scoped kinds (SecurityBaseline): always a ClusterRole, even when one namespace is watched. */}}
{{- define "lakeops.clusterRules" -}}
- apiGroups: ["lakeops.dev"]
  resources: ["securitybaselines"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["lakeops.dev"]
  resources: ["securitybaselines/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["lakeops.dev"]
  resources: ["securitybaselines/finalizers"]
  verbs: ["update", "patch"]
{{- end }}
