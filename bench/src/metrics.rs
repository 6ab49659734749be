//! Proof that a variant's plugins ran: `sluice_plugin_calls_total` from
//! the admin listener's `/metrics` after the runs. A 200 from the gateway
//! alone would not tell a router that was skipped (the client's model won)
//! or a redactor that was never bound from one that did its work.

use std::collections::BTreeMap;

/// The calls of `plugin` by result (`ok`, `error`, `timeout`, …) in a
/// Prometheus text exposition.
pub fn plugin_calls(text: &str, plugin: &str) -> BTreeMap<String, u64> {
    let want = format!("plugin=\"{plugin}\"");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("sluice_plugin_calls_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        if !labels.split(',').any(|l| l == want) {
            continue;
        }
        let result = labels
            .split(',')
            .find_map(|l| l.strip_prefix("result=\""))
            .map(|r| r.trim_end_matches('"'));
        if let (Some(result), Ok(n)) = (result, value.trim().parse::<f64>()) {
            out.insert(result.to_owned(), n as u64);
        }
    }
    out
}

/// Checks that `plugin` answered at least `min_ok` calls and failed none.
pub fn check_plugin(text: &str, plugin: &str, min_ok: u64) -> Result<u64, String> {
    let calls = plugin_calls(text, plugin);
    let ok = calls.get("ok").copied().unwrap_or(0);
    let failed: Vec<String> = calls
        .iter()
        .filter(|(r, n)| r.as_str() != "ok" && **n > 0)
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    if !failed.is_empty() {
        return Err(format!("plugin {plugin}: {}", failed.join(", ")));
    }
    if ok < min_ok {
        return Err(format!(
            "plugin {plugin} answered {ok} calls for {min_ok} requests: it did not run on every request"
        ));
    }
    Ok(ok)
}

#[cfg(test)]
mod test {
    use super::*;

    const TEXT: &str = "# HELP sluice_plugin_calls_total Plugin calls by outcome\n\
        # TYPE sluice_plugin_calls_total counter\n\
        sluice_plugin_calls_total{plugin=\"model-prefix\",result=\"ok\"} 120\n\
        sluice_plugin_calls_total{plugin=\"model-prefix\",result=\"timeout\"} 0\n\
        sluice_plugin_calls_total{plugin=\"pii-redactor\",result=\"ok\"} 240\n\
        sluice_plugin_calls_total{plugin=\"pii-redactor\",result=\"error\"} 2\n\
        sluice_plugin_calls_total_other{plugin=\"model-prefix\",result=\"ok\"} 9\n";

    #[test]
    fn calls_are_read_per_plugin_and_result() {
        let c = plugin_calls(TEXT, "model-prefix");
        assert_eq!(c.get("ok"), Some(&120));
        assert_eq!(c.get("timeout"), Some(&0));
        assert_eq!(c.len(), 2);
        assert!(plugin_calls(TEXT, "model").is_empty());
    }

    #[test]
    fn a_plugin_must_run_on_every_request_without_failing() {
        assert_eq!(check_plugin(TEXT, "model-prefix", 120), Ok(120));
        assert!(
            check_plugin(TEXT, "model-prefix", 121)
                .unwrap_err()
                .contains("did not run")
        );
        assert_eq!(
            check_plugin(TEXT, "pii-redactor", 1),
            Err("plugin pii-redactor: 2 error".into())
        );
        assert!(check_plugin(TEXT, "openai-anthropic", 1).is_err());
    }
}
