//! What can be checked of `deploy/` without a container engine: every YAML file parses, the
//! manifests carry what the deployment relies on, and every example configuration passes
//! `tessera check`.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use crate::helpers::run_cli;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn yaml(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", path.display()))
}

fn kubernetes(kind: &str) -> Yaml {
    files_under(&deploy().join("kubernetes"), "yaml")
        .iter()
        .flat_map(|p| yaml(p))
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} manifest"))
}

#[test]
fn every_yaml_file_parses_and_every_manifest_is_named() {
    let files = files_under(&deploy(), "yaml");
    assert!(files.len() >= 7, "{files:?}");
    for path in files {
        let docs = yaml(&path);
        assert!(!docs.is_empty(), "{}: empty", path.display());
        if path.starts_with(deploy().join("kubernetes")) {
            for d in docs {
                assert!(d["apiVersion"].as_str().is_some(), "{}", path.display());
                assert!(
                    d["metadata"]["name"].as_str().is_some(),
                    "{}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_manifests_run_three_probed_replicas_a_budget_and_a_migrate_job() {
    let deployment = kubernetes("Deployment");
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(3));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        container["env"][0]["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("tessera-secrets")
    );
    assert_eq!(
        kubernetes("PodDisruptionBudget")["spec"]["minAvailable"].as_i64(),
        Some(2)
    );
    let job = kubernetes("Job");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"][0].as_str(),
        Some("migrate")
    );
    kubernetes("Service");
    kubernetes("Secret");
    let config = kubernetes("ConfigMap")["data"]["tessera.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let source = std::fs::read_to_string(deploy().join("config/postgres.toml")).unwrap();
    assert_eq!(
        config, source,
        "the ConfigMap holds deploy/config/postgres.toml"
    );
}

/// A mapping with its YAML merge key (`<<: *anchor`) resolved, as compose reads it.
fn merged(mapping: &Yaml) -> Yaml {
    let mut out = mapping["<<"].as_hash().cloned().unwrap_or_default();
    for (k, v) in mapping.as_hash().unwrap() {
        if k.as_str() != Some("<<") {
            out.insert(k.clone(), v.clone());
        }
    }
    Yaml::Hash(out)
}

#[test]
fn compose_migrates_once_then_runs_two_instances_on_postgres() {
    let compose = &yaml(&deploy().join("compose.yaml"))[0];
    let services = &compose["services"];
    assert!(services["postgres"]["image"].as_str().is_some());
    assert_eq!(services["migrate"]["command"][0].as_str(), Some("migrate"));
    for instance in ["tessera-a", "tessera-b"] {
        let s = &merged(&services[instance]);
        assert_eq!(
            s["depends_on"]["migrate"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{instance}"
        );
        assert!(
            s["environment"]["TESSERA__STORAGE__URL"]
                .as_str()
                .is_some_and(|u| u.starts_with("postgres://")),
            "{instance}"
        );
    }
}

#[test]
fn the_image_builds_in_stages_and_runs_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[1].contains("distroless"), "a small final image");
    let last_user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .unwrap();
    let user = last_user.trim_start_matches("USER ").trim();
    assert!(!["root", "0", "root:root", "0:0"].contains(&user), "{user}");
}

/// Every example configuration passes `tessera check`: the development one where it is, the
/// deployment ones and the workload recipes copied beside a freshly generated
/// `keys/signing.pem`, as they are installed.
#[test]
fn every_example_configuration_passes_check() {
    let dev = run_cli(&["check"], Some(&deploy().join("tessera.toml")));
    assert!(
        dev.status.success(),
        "{}",
        String::from_utf8_lossy(&dev.stderr)
    );
    let configs = files_under(&deploy().join("config"), "toml");
    assert_eq!(configs.len(), 2);
    let recipes = files_under(&deploy().join("examples/workloads"), "toml");
    assert_eq!(recipes.len(), 3, "Kubernetes, GitHub Actions, SPIFFE");
    for config in configs.into_iter().chain(recipes) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("keys/signing.pem");
        std::fs::create_dir(key.parent().unwrap()).unwrap();
        let generated = run_cli(
            &[
                "keys",
                "generate",
                "--alg",
                "ES256",
                "--out",
                key.to_str().unwrap(),
            ],
            None,
        );
        assert!(generated.status.success());
        let installed = dir.path().join("tessera.toml");
        std::fs::copy(&config, &installed).unwrap();
        let out = run_cli(&["check"], Some(&installed));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            config.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("configuration is valid"), "{stdout}");
        assert!(
            !stdout.contains("warning"),
            "{}: {stdout}",
            config.display()
        );
    }
}

/// The metric names an expression uses, each as `/metrics` declares it (a histogram's
/// `_bucket`, `_sum` and `_count` series belong to the histogram).
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("tessera_"))
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| w.strip_suffix(suffix))
                .unwrap_or(w)
                .to_string()
        })
        .collect()
}

/// What a running Tessera exports at `/metrics`, after one exchange: on SQLite, whose store
/// gauges (`tessera_store_free_bytes`) the deployment's alerts and dashboard watch.
async fn exported_metrics() -> String {
    let app = crate::helpers::TestApp::spawn_with(crate::helpers::on_sqlite).await;
    app.minted(serde_json::json!({})).await;
    app.http
        .get(format!("{}/metrics", app.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn assert_exported(metrics: &str, expr: &str) {
    let names = metric_names(expr);
    assert!(!names.is_empty(), "{expr}");
    for name in names {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "{name} (in {expr}) is not exported"
        );
    }
}

#[tokio::test]
async fn the_alert_rules_name_only_metrics_tessera_exports() {
    let docs = yaml(&deploy().join("prometheus/alerts.yaml"));
    let rules = docs[0]["groups"][0]["rules"].as_vec().unwrap();
    assert!(rules.len() >= 3);
    let metrics = exported_metrics().await;
    for rule in rules {
        assert_exported(&metrics, rule["expr"].as_str().unwrap());
    }
}

#[tokio::test]
async fn the_dashboard_is_valid_and_graphs_only_metrics_tessera_exports() {
    let text = std::fs::read_to_string(deploy().join("grafana/tessera.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 7);
    let metrics = exported_metrics().await;
    for expr in exprs {
        assert_exported(&metrics, expr);
    }
}
