//! Managed process instances do not inherit the admin token's environment variables.

mod common;

use common::{wait_until, Drover, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_do_not_inherit_the_admin_token_variable() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env.txt");
    // The instance writes the environment it was given, then serves.
    let script = format!(
        "env > '{}'; exec '{BIN}' backend --listen 127.0.0.1:$PORT",
        env_file.display()
    );
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
token = "${{DROVER_TEST_ADMIN_SECRET}}"
[log]
access = false
[pools.app]
[pools.app.health]
path = "/health"
interval = "200ms"
rise = 1
[pools.app.instances]
provider = "process"
command = ["sh", "-c", "{script}"]
env = {{ EXPLICIT = "yes" }}
stop_timeout = "2s"
"#
    );
    let d = Drover::start_env(
        &config,
        &[],
        &[
            ("DROVER_TEST_ADMIN_SECRET", "s3cret-value"),
            ("DROVER_TEST_HARMLESS", "kept"),
        ],
    );
    let token = "s3cret-value";
    wait_until("one healthy instance", 30, async || {
        let v: serde_json::Value = common::client()
            .get(d.admin_url("/api/v1/pools/app"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        v["backends"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["state"] == "healthy"))
    })
    .await;
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        !env.contains("DROVER_TEST_ADMIN_SECRET") && !env.contains("s3cret-value"),
        "the admin token reached the instance:\n{env}"
    );
    assert!(env.contains("DROVER_TEST_HARMLESS=kept"), "{env}");
    assert!(env.contains("EXPLICIT=yes"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PORT=")), "{env}");
}
