"""Deployment files for running govnet nodes in production.

``govnet@.service``            systemd unit template, one instance per node id
``govnet-alerts.yml``          Prometheus alert rules (sync lag, outbox growth, node down, overdue rising …)
``govnet-alerts.test.yml``     promtool unit tests of those rules
``grafana-dashboard.json``     a Grafana dashboard over the nodes' metrics
``prometheus.py``              the Prometheus scrape configuration, generated from a topology file
                               (``govnet deploy prometheus TOPOLOGY.toml``)

``tests/test_deploy.py`` checks them with promtool and against a real node's /metrics.
"""
