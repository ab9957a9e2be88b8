"""Replica counts, the autoscaler's view and pods from a live Kubernetes API (layer 5, beside
`judge` and `local`): the `ReplicaSource` a real run uses.

- `api`: configuration, the permission table (calls, SelfSubjectAccessReview pre-flight, RBAC
  rules), API answers mapped to `nimbus_scenarios.errors`, the sharded Job's creation time;
- `access`: the SelfSubjectAccessReview pre-flight over a permission table;
- `replicas`: `ClusterReplicaSource`, the run's view of one Deployment (`timing`: its pacing);
- `watch`: the watcher thread behind it (resume, relist on 410, polling when watch is forbidden);
  `podwatch`: the same for the Deployment's pods;
- `scaling`: the HPA or KEDA ScaledObject targeting the Deployment, its status, and its pods;
- `autoscaler_status`, `podrecords`, `recording`: why it scaled, as `nimbus_scenarios.scaling`
  data (autoscaler samples, pod records);
- `jobs`: the one load-test Job template (Job, CronJob, scenario ConfigMap, deadline);
- `shipped`: the manifests/ Job and CronJob files generated from it (`make manifests`).

The package itself imports nothing: the modules (all but `jobs` and `shipped`) import
`kubernetes`, which `validate` and `plan` must not pay for, so a run imports them where it needs
them.
"""
