//! End to end: `/metrics` parses as Prometheus text exposition, carries every
//! family SPEC names with HELP/TYPE and the right labels, and counters move.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{client, one_pool, Backend, Drover};

/// One sample: family-or-series name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict parser of the text format (0.0.4): HELP and TYPE before a family's
/// samples, valid names, quoted and escaped label values, float values.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut samples = Vec::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for (i, line) in text.lines().enumerate() {
        let ctx = || format!("line {}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
            assert!(valid_name(name) && !help.is_empty(), "{}", ctx());
            assert!(helps.insert(name.to_string()), "duplicate HELP {}", ctx());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{}",
                ctx()
            );
            assert!(helps.contains(name), "TYPE before HELP {}", ctx());
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "duplicate TYPE {}",
                ctx()
            );
            continue;
        }
        assert!(!line.starts_with('#'), "{}", ctx());
        let (name, rest) = match line.find(['{', ' ']) {
            Some(p) => line.split_at(p),
            None => panic!("{}", ctx()),
        };
        assert!(valid_name(name), "{}", ctx());
        let mut labels = BTreeMap::new();
        let value_part = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end;
            loop {
                // label name
                let start = chars.peek().map(|(i, _)| *i).unwrap();
                if body[start..].starts_with('}') {
                    end = start + 1;
                    break;
                }
                let eq = body[start..]
                    .find('=')
                    .unwrap_or_else(|| panic!("{}", ctx()))
                    + start;
                let lname = &body[start..eq];
                assert!(valid_name(lname), "label name {}", ctx());
                assert_eq!(&body[eq + 1..eq + 2], "\"", "{}", ctx());
                let mut val = String::new();
                let mut j = eq + 2;
                let bytes: Vec<char> = body[j..].chars().collect();
                let mut k = 0;
                loop {
                    let c = *bytes
                        .get(k)
                        .unwrap_or_else(|| panic!("unterminated {}", ctx()));
                    match c {
                        '\\' => {
                            let n = bytes[k + 1];
                            val.push(match n {
                                'n' => '\n',
                                '\\' => '\\',
                                '"' => '"',
                                _ => panic!("bad escape {}", ctx()),
                            });
                            k += 2;
                        }
                        '"' => {
                            k += 1;
                            break;
                        }
                        '\n' => panic!("raw newline {}", ctx()),
                        c => {
                            val.push(c);
                            k += 1;
                        }
                    }
                }
                j += bytes[..k].iter().map(|c| c.len_utf8()).sum::<usize>();
                labels.insert(lname.to_string(), val);
                while chars.peek().is_some_and(|(i, _)| *i < j) {
                    chars.next();
                }
                match &body[j..j + 1] {
                    "," => {
                        chars.next();
                    }
                    "}" => {
                        end = j + 1;
                        break;
                    }
                    _ => panic!("{}", ctx()),
                }
            }
            &body[end..]
        } else {
            rest
        };
        let value_str = value_part.trim();
        let value: f64 = match value_str {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("value {}", ctx())),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its TYPE {}",
            ctx()
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (types, samples)
}

fn find<'a>(s: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    s.iter().find(|x| {
        x.name == name
            && labels
                .iter()
                .all(|(k, v)| x.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

async fn scrape(d: &Drover) -> String {
    let r = client().get(d.admin_url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_parse_and_name_every_spec_family_and_counters_move() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let before = scrape(&d).await;
    let (types, s0) = parse(&before);
    for (name, kind) in [
        ("drover_requests_total", "counter"),
        ("drover_request_duration_seconds", "histogram"),
        ("drover_backend_inflight", "gauge"),
        ("drover_backend_up", "gauge"),
        ("drover_pool_instances", "gauge"),
        ("drover_pool_desired_instances", "gauge"),
        ("drover_retries_total", "counter"),
        ("drover_scale_events_total", "counter"),
        ("drover_health_checks_total", "counter"),
        ("drover_cold_start_seconds", "histogram"),
        ("drover_proxy_errors_total", "counter"),
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(kind),
            "{name}\n{before}"
        );
    }
    let backend = a.addr.to_string();
    let b = backend.as_str();
    assert_eq!(
        find(&s0, "drover_backend_up", &[("pool", "app"), ("backend", b)])
            .unwrap()
            .value,
        1.0
    );
    assert_eq!(
        find(
            &s0,
            "drover_backend_inflight",
            &[("pool", "app"), ("backend", b)]
        )
        .unwrap()
        .value,
        0.0
    );
    assert_eq!(
        find(
            &s0,
            "drover_pool_instances",
            &[("pool", "app"), ("state", "healthy")]
        )
        .unwrap()
        .value,
        1.0
    );
    assert_eq!(
        find(
            &s0,
            "drover_pool_instances",
            &[("pool", "app"), ("state", "draining")]
        )
        .unwrap()
        .value,
        0.0
    );
    assert_eq!(
        find(&s0, "drover_pool_desired_instances", &[("pool", "app")])
            .unwrap()
            .value,
        1.0
    );
    assert!(find(
        &s0,
        "drover_scale_events_total",
        &[("pool", "app"), ("direction", "up")]
    )
    .is_some());
    assert!(find(
        &s0,
        "drover_requests_total",
        &[("backend", b), ("code", "200")]
    )
    .is_none());

    for p in ["/x", "/x", "/x", "/status/404"] {
        client()
            .get(d.url(p))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let (_, s1) = parse(&scrape(&d).await);
    let req = |s: &[Sample], code| {
        find(
            s,
            "drover_requests_total",
            &[("pool", "app"), ("backend", b), ("code", code)],
        )
        .map(|x| x.value)
    };
    assert_eq!(req(&s1, "200"), Some(3.0));
    assert_eq!(req(&s1, "404"), Some(1.0));
    let count = |s: &[Sample]| {
        find(
            s,
            "drover_request_duration_seconds_count",
            &[("pool", "app")],
        )
        .unwrap()
        .value
    };
    assert_eq!(count(&s0), 0.0);
    assert_eq!(count(&s1), 4.0);
    // Histogram buckets are cumulative and end in +Inf = count.
    let buckets: Vec<&Sample> = s1
        .iter()
        .filter(|x| x.name == "drover_request_duration_seconds_bucket" && x.labels["pool"] == "app")
        .collect();
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
    assert_eq!(buckets.last().unwrap().labels["le"], "+Inf");
    assert_eq!(buckets.last().unwrap().value, 4.0);

    // Draining shows in the gauges; a removed backend makes no more samples.
    client()
        .post(d.admin_url(&format!("/api/v1/pools/app/backends/{b}/drain")))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let (_, s2) = parse(&scrape(&d).await);
    assert_eq!(
        find(
            &s2,
            "drover_pool_instances",
            &[("pool", "app"), ("state", "draining")]
        )
        .unwrap()
        .value,
        1.0
    );
    assert_eq!(
        find(&s2, "drover_backend_up", &[("backend", b)])
            .unwrap()
            .value,
        0.0
    );
    // No member left: drover answers 503 itself, counted with backend "" and by cause.
    let errors = |s: &[Sample], cause| {
        find(
            s,
            "drover_proxy_errors_total",
            &[("pool", "app"), ("cause", cause)],
        )
        .map(|x| x.value)
    };
    assert_eq!(errors(&s2, "no_member"), Some(0.0));
    client().get(d.url("/x")).send().await.unwrap();
    let (_, s3) = parse(&scrape(&d).await);
    assert_eq!(errors(&s3, "no_member"), Some(1.0));
    assert_eq!(errors(&s3, "client"), Some(0.0));
    assert_eq!(
        find(
            &s3,
            "drover_requests_total",
            &[("pool", "app"), ("backend", ""), ("code", "503")]
        )
        .unwrap()
        .value,
        1.0
    );
}

#[test]
fn the_parser_rejects_malformed_exposition() {
    let ok = "# HELP m x\n# TYPE m counter\nm{a=\"q\\\"\\\\\\n\",b=\"\"} 1\n";
    let (_, s) = parse(ok);
    assert_eq!(s[0].labels["a"], "q\"\\\n");
    for bad in [
        "m 1\n",                                          // no TYPE
        "# HELP m x\n# TYPE m counter\nm{a=q} 1\n",       // unquoted label
        "# HELP m x\n# TYPE m counter\nm{a=\"\\x\"} 1\n", // bad escape
        "# HELP m x\n# TYPE m counter\nm one\n",          // bad value
    ] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad:?}");
    }
}
