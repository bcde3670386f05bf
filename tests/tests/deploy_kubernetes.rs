//! The DaemonSet under deploy/kubernetes: `kubernetes-validate --strict` (the Kubernetes
//! schemas, unknown fields refused) accepts it, it mounts what the sources read and probes
//! the endpoint, its configuration passes `infra-collector validate`, and a misspelt field
//! is refused (so the check can fail).

use std::fs;
use std::process::{Command, Stdio};

use infralog_tests::{bin, repo_root};

fn kubernetes_validate(path: &std::path::Path) -> (bool, String) {
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("kubernetes-validate (cargo xtask setup installs it from PyPI)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_daemonset_is_valid_and_complete() {
    let path = repo_root().join("deploy/kubernetes/infra-collector.yaml");
    let (ok, text) = kubernetes_validate(&path);
    assert!(ok, "{text}");
    for kind in [
        "namespace",
        "serviceaccount",
        "configmap",
        "secret",
        "daemonset",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}/")),
            "{kind} not validated:\n{text}"
        );
    }
    assert!(!text.contains("WARN"), "{text}");

    let manifest = fs::read_to_string(&path).unwrap();
    for needed in [
        "path: /dev/kmsg",
        "path: /var/log/journal",
        "path: /run/log/journal",
        "path: /var/log\n",
        "path: /sys/kernel/btf",
        "path: /sys/kernel/tracing",
        "prometheus.io/scrape: \"true\"",
        "prometheus.io/port: \"9880\"",
        "livenessProbe:",
        "path: /healthz",
        "readinessProbe:",
        "path: /readyz",
        "privileged: false",
        "drop: [\"ALL\"]",
    ] {
        assert!(manifest.contains(needed), "the manifest has no {needed:?}");
    }

    // The ConfigMap's configuration, as the collector in the pod reads it.
    let toml: String = (manifest.lines())
        .skip_while(|l| !l.contains("infra-collector.toml: |"))
        .skip(1)
        .take_while(|l| !l.starts_with("---"))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(toml.contains("[http]"), "{toml}");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    fs::write(&token, "t0ken\n").unwrap();
    let cfg = dir.path().join("c.toml");
    fs::write(
        &cfg,
        toml.replace("/etc/infralog/token/token", &token.display().to_string()),
    )
    .unwrap();
    let out = Command::new(bin("infra-collector"))
        .arg("validate")
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A misspelt field is refused.
    let broken = dir.path().join("broken.yaml");
    fs::write(&broken, manifest.replacen("hostPath:", "hostPth:", 1)).unwrap();
    let (ok, text) = kubernetes_validate(&broken);
    assert!(!ok, "a misspelt field was accepted:\n{text}");
}
