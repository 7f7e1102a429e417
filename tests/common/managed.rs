//! A config with one pool `app` of managed `drover backend` processes.

/// Pool `app` (the only route) of `drover backend` instances started by drover,
/// checked on `/health` every 100 ms (rise 1, fall 2). `pool` goes into
/// `[pools.app]`, `backend_args` after the backend's `--listen` (TOML list
/// items, like `"--warmup", "3000"`), `instances` into `[pools.app.instances]`.
pub fn managed_pool(pool: &str, backend_args: &str, instances: &str) -> String {
    let exe = super::BIN;
    let args = if backend_args.is_empty() {
        String::new()
    } else {
        format!(", {backend_args}")
    };
    let head = super::ONE_ROUTE;
    format!(
        r#"{head}[pools.app]
{pool}
[pools.app.health]
path = "/health"
interval = "100ms"
rise = 1
fall = 2
[pools.app.instances]
provider = "process"
command = ["{exe}", "backend", "--listen", "127.0.0.1:{{port}}"{args}]
{instances}
"#
    )
}

/// One pool `app` of `drover backend` processes named `{marker}-{port}` (so a
/// test can find them in `/proc`, see [`backends_with`]), checked on `/health`
/// every 200 ms (rise 1, fall 2), started within 10 s and stopped after 2 s;
/// drover shuts down within 5 s. `pool` goes into `[pools.app]`,
/// `instances` ends `[pools.app.instances]` (after the timeouts, which it may
/// not repeat), `rest` (like an `[pools.app.autoscale]` section) comes last.
pub fn marked_pool(marker: &str, pool: &str, instances: &str, rest: &str) -> String {
    let exe = super::BIN;
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
shutdown_timeout = "5s"
[admin]
listen = "127.0.0.1:0"
[log]
access = false
[pools.app]
{pool}
[pools.app.health]
path = "/health"
interval = "200ms"
rise = 1
fall = 2
[pools.app.instances]
provider = "process"
command = ["{exe}", "backend", "--listen", "127.0.0.1:{{port}}", "--name", "{marker}-{{port}}"]
start_timeout = "10s"
stop_timeout = "2s"
{instances}
{rest}
"#
    )
}

/// `PUT /api/v1/pools/app/scale` to `n` instances; asserts `202`.
pub async fn scale(d: &super::Drover, n: u32) {
    let r = super::client()
        .put(d.admin_url("/api/v1/pools/app/scale"))
        .json(&serde_json::json!({ "instances": n }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// Pids and states (`/proc/PID/stat`: `S`, `R`, `T` = stopped) of the
/// backend processes whose command line contains `marker`.
pub fn backends_with(marker: &str) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.trim_start().chars().next())
            .unwrap_or('?');
        if cmd.contains(marker)
            && cmd.contains(" backend ")
            && !cmd.contains("__supervise")
            && state != 'Z'
        {
            out.push((pid, state));
        }
    }
    out
}
