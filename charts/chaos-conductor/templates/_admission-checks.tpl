{{- /*
The author checks on one ChaosEngine spec (variables.spec), shared by the ChaosEngine policy and the
ChaosSchedule policy (spec.engineTemplateSpec: the scheduler creates those engines with the
controller's ServiceAccount, which the engine policy exempts). Arguments: ap (the admissionPolicy
values), root (CEL of the engine spec), p (its path in messages), run (whose Jobs, in messages).
The output starts with a newline: include it with "{{- include ... }}" at column 0.
*/ -}}
{{- define "chaos-conductor.engineSpecChecks" }}
{{- $ap := .ap }}{{ $root := .root }}{{ $p := .p }}{{ $run := .run }}
  variables:
    # The engine spec the checks read: the engine's own, or the template of a schedule's engines.
    - name: spec
      expression: {{ $root | quote }}
    - name: who
      expression: "'chaos-conductor admission: ' + request.userInfo.username"
    - name: imagePrefixes
      expression: {{ toJson $ap.allowedImagePrefixes | quote }}
    - name: tolerationKeys
      expression: {{ toJson $ap.allowedTolerationKeys | quote }}
    # experiments[].spec.components of the entries that have one.
    - name: comps
      expression: >-
        has(variables.spec.experiments)
        ? variables.spec.experiments.filter(e, has(e.spec) && has(e.spec.components)).map(e, e.spec.components)
        : []
    - name: sidecars
      expression: >-
        has(variables.spec.components) && has(variables.spec.components.sidecar)
        ? variables.spec.components.sidecar : []
    # Every Secret the experiment pod would mount or read: volumes, env valueFrom, envFrom.
    - name: secrets
      expression: >-
        variables.comps.filter(c, has(c.secrets)).map(c, c.secrets.map(s, s.name)).flatten()
        + variables.comps.filter(c, has(c.env)).map(c, c.env.filter(v, has(v.valueFrom) && has(v.valueFrom.secretKeyRef)).map(v, v.valueFrom.secretKeyRef.name)).flatten()
        + variables.sidecars.filter(s, has(s.secrets)).map(s, s.secrets.map(x, x.name)).flatten()
        + variables.sidecars.filter(s, has(s.env)).map(s, s.env.filter(v, has(v.valueFrom) && has(v.valueFrom.secretKeyRef)).map(v, v.valueFrom.secretKeyRef.name)).flatten()
        + variables.sidecars.filter(s, has(s.envFrom)).map(s, s.envFrom.filter(f, has(f.secretRef)).map(f, f.secretRef.name)).flatten()
    - name: unreadableSecrets
      expression: >-
        variables.secrets.filter(n, !authorizer.group('').resource('secrets').namespace(request.namespace).name(n).check('get').allowed())
    # Namespaces whose pods the experiments act on.
    - name: targets
      expression: >-
        (has(variables.spec.appinfo) && has(variables.spec.appinfo.appns) && variables.spec.appinfo.appns != '' ? [variables.spec.appinfo.appns] : [])
        + (has(variables.spec.selectors) && has(variables.spec.selectors.workloads) ? variables.spec.selectors.workloads.map(w, w.namespace) : [])
        + (has(variables.spec.selectors) && has(variables.spec.selectors.pods) ? variables.spec.selectors.pods.map(p, p.namespace) : [])
    - name: untouchableTargets
      expression: >-
        variables.targets.filter(t, !authorizer.group('').resource('pods').namespace(t).check('delete').allowed())
    - name: images
      expression: >-
        variables.comps.filter(c, has(c.experimentImage) && c.experimentImage != '').map(c, c.experimentImage)
        + variables.sidecars.filter(s, has(s.image) && s.image != '').map(s, s.image)
    - name: offListImages
      expression: >-
        size(variables.imagePrefixes) == 0 ? [] : variables.images.filter(i, !variables.imagePrefixes.exists(p, i.startsWith(p)))
    - name: tolerations
      expression: >-
        variables.comps.filter(c, has(c.tolerations)).map(c, c.tolerations).flatten()
    - name: offListTolerations
      expression: >-
        variables.tolerations.filter(t, !has(t.key) || t.key == '' || !(t.key in variables.tolerationKeys)).map(t, has(t.key) && t.key != '' ? t.key : '<every key>')
    - name: sa
      expression: >-
        has(variables.spec.chaosServiceAccount) ? variables.spec.chaosServiceAccount : ''
  validations:
    - expression: "authorizer.group('batch').resource('jobs').namespace(request.namespace).check('create').allowed()"
      reason: Forbidden
      messageExpression: >-
        variables.who + ' may not create jobs.batch in namespace ' + request.namespace
        + ': missing permission create jobs ({{ $run }} experiments run as Jobs there)'
    - expression: "authorizer.group('').resource('pods').namespace(request.namespace).check('create').allowed()"
      reason: Forbidden
      messageExpression: >-
        variables.who + ' may not create pods in namespace ' + request.namespace
        + ': missing permission create pods ({{ $run }} Jobs run pods there)'
    - expression: >-
        variables.sa == '' || authorizer.group('').resource('serviceaccounts').namespace(request.namespace).name(variables.sa).check('impersonate').allowed()
      reason: Forbidden
      messageExpression: >-
        variables.who + ' may not act as ServiceAccount ' + variables.sa + ' in namespace ' + request.namespace
        + ': missing permission impersonate serviceaccounts/' + variables.sa
        + ' ({{ $p }}chaosServiceAccount: the experiment pods run with its rights)'
    {{- /* messageExpression may not use the authorizer (nor variables built with it), so the
    first few names get one validation each, naming the item; a catch-all covers the rest. */}}
    {{- range $i := until 8 }}
    - expression: >-
        size(variables.targets) <= {{ $i }} || authorizer.group('').resource('pods').namespace(variables.targets[{{ $i }}]).check('delete').allowed()
      reason: Forbidden
      messageExpression: >-
        variables.who + ' may not delete pods in target namespace ' + variables.targets[{{ $i }}]
        + ': missing permission delete pods there ({{ $p }}appinfo.appns / {{ $p }}selectors)'
    {{- end }}
    - expression: "size(variables.untouchableTargets) == 0"
      reason: Forbidden
      messageExpression: >-
        variables.who + ' may not delete pods in one of the target namespaces ' + variables.targets.join(', ')
        + ': missing permission delete pods there ({{ $p }}appinfo.appns / {{ $p }}selectors)'
    {{- range $i := until 8 }}
    - expression: >-
        size(variables.secrets) <= {{ $i }} || authorizer.group('').resource('secrets').namespace(request.namespace).name(variables.secrets[{{ $i }}]).check('get').allowed()
      reason: Forbidden
      messageExpression: >-
        variables.who + ' may not get Secret ' + variables.secrets[{{ $i }}] + ' in namespace ' + request.namespace
        + ': missing permission get secrets/' + variables.secrets[{{ $i }}] + ' (the experiment pod would mount or read it)'
    {{- end }}
    - expression: "size(variables.unreadableSecrets) == 0"
      reason: Forbidden
      messageExpression: >-
        variables.who + ' may not get one of the Secrets ' + variables.secrets.join(', ') + ' in namespace ' + request.namespace
        + ': missing permission get secrets (the experiment pod would mount or read them)'
    - expression: "size(variables.offListImages) == 0"
      reason: Forbidden
      messageExpression: >-
        variables.who + ': image ' + variables.offListImages[0]
        + ' is not allowed (experimentImage / sidecar image must start with one of '
        + variables.imagePrefixes.join(', ') + '; chart value admissionPolicy.allowedImagePrefixes)'
    - expression: "size(variables.offListTolerations) == 0"
      reason: Forbidden
      messageExpression: >-
        variables.who + ': toleration of ' + variables.offListTolerations[0]
        + ' is not allowed ({{ $p }}experiments[].spec.components.tolerations keys must be one of ['
        + variables.tolerationKeys.join(', ') + ']; chart value admissionPolicy.allowedTolerationKeys)'
{{- end }}

{{- /*
Variables of the author annotations (admission-policy.yaml): whether this write records its
author, the requester's groups as recorded (comma-joined), and what the old object recorded.
Starts with a newline, like engineSpecChecks.
*/}}
{{- define "chaos-conductor.authorVariables" }}
    - name: recorded
      expression: >-
        request.operation == 'CREATE' || !has(oldObject.spec) || !has(object.spec) || object.spec != oldObject.spec
    - name: groups
      expression: "has(request.userInfo.groups) ? request.userInfo.groups.join(',') : ''"
    - name: oldAuthor
      expression: >-
        request.operation == 'UPDATE' && has(oldObject.metadata.annotations) && {{ .authorKey | quote }} in oldObject.metadata.annotations
        ? oldObject.metadata.annotations[{{ .authorKey | quote }}] : ''
    - name: oldGroups
      expression: >-
        request.operation == 'UPDATE' && has(oldObject.metadata.annotations) && {{ .groupsKey | quote }} in oldObject.metadata.annotations
        ? oldObject.metadata.annotations[{{ .groupsKey | quote }}] : ''
{{- end }}
