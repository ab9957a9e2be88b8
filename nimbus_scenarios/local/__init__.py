"""The `local` stage: a loopback stand-in for the consumer's Deployment, Service and autoscaler.

`run --local` and `make demo` use it instead of a cluster. `fleet.Fleet` runs reference consumer
processes (`consumer`, started by `launch`, each followed by a `replica.Replica`) behind a
per-connection proxy (`proxy`, `pump`, `backends`), scrapes them (`scrape`, `series`) and scales
them with the KEDA/HPA arithmetic (`autoscaler`, `autoscaler_config`); `source` shows the fleet to
the runner as a `ReplicaSource`. Everything binds loopback only (`loopback`).
"""
