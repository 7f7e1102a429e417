//! End to end: `drover run` with no config file runs the built-in demo.

mod common;

use std::time::Duration;

use common::{client, get_json, Proc};

#[tokio::test]
async fn run_without_config_starts_the_demo_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::spawn(&["--log-format", "json", "run"], Some(dir.path()));
    let proxy = proc.stderr.addr_of("proxy listening");
    let admin = proc.stderr.addr_of("admin listening");
    assert_eq!(proxy.port(), 8080);
    assert_eq!(admin.port(), 9090);
    proc.stderr
        .wait_for("demo banner", Duration::from_secs(5), |l| {
            l.contains("built-in demo")
        });
    proc.stderr
        .wait_for("demo url", Duration::from_secs(5), |l| {
            l.contains("curl http://127.0.0.1:8080/anything")
        });
    // The demo pool may still be starting instances: retry until the first answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut answered = 0;
    while answered < 5 {
        if let Ok(r) = client()
            .get(format!("http://{proxy}/anything"))
            .send()
            .await
        {
            if r.status() == 200 {
                let v: serde_json::Value = r.json().await.unwrap();
                assert_eq!(v["path"], "/anything");
                assert!(v["name"].as_str().unwrap().starts_with("demo"), "{v}");
                answered += 1;
                continue;
            }
        }
        assert!(
            answered == 0,
            "a demo request failed after the first success"
        );
        assert!(std::time::Instant::now() < deadline, "demo never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pools: serde_json::Value = get_json(&format!("http://{admin}/api/v1/pools")).await;
    assert_eq!(pools[0]["name"], "demo");
}
