//! User-agent parsing with uap-core's regexes, as Grafana does with uap-go: `browser` is the
//! user-agent family, versions are "major.minor" (or "major", or ""), `device` the device
//! family. The parser is built on first use (about 0.2 s, off the runtime: see `parse_all`),
//! not at start-up, and without Unicode classes: Go's regexp, which uap-go uses, treats `\d`,
//! `\w` and `\s` as ASCII too, and Unicode-aware classes made the compiled parser hold about
//! 150 MB more (measured: 31 MB built and 40 MB after a parse, against 138 MB and 197 MB).

use std::sync::OnceLock;

use uaparser::{Parser, UserAgentParser};

static REGEXES: &[u8] = include_bytes!("../../assets/uap-core/regexes.yaml");
static PARSER: OnceLock<Option<UserAgentParser>> = OnceLock::new();

fn parser() -> Option<&'static UserAgentParser> {
    PARSER
        .get_or_init(|| {
            match UserAgentParser::builder()
                .with_unicode_support(false)
                .build_from_bytes(REGEXES)
            {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "user-agent parser failed to load");
                    None
                }
            }
        })
        .as_ref()
}

/// Parses many user agents on the blocking pool: the first call builds the parser.
pub async fn parse_all(user_agents: Vec<String>) -> Vec<ClientInfo> {
    let n = user_agents.len();
    match tokio::task::spawn_blocking(move || user_agents.iter().map(|a| parse(a)).collect()).await
    {
        Ok(v) => v,
        Err(_) => vec![ClientInfo::default(); n],
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device: String,
}

fn version(major: Option<&str>, minor: Option<&str>) -> String {
    match (major, minor) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}.{b}"),
        (Some(a), _) => a.to_string(),
        _ => String::new(),
    }
}

pub fn parse(user_agent: &str) -> ClientInfo {
    let Some(p) = parser() else {
        return ClientInfo {
            browser: "Other".into(),
            os: "Other".into(),
            device: "Other".into(),
            ..ClientInfo::default()
        };
    };
    let c = p.parse(user_agent);
    ClientInfo {
        browser: c.user_agent.family.to_string(),
        browser_version: version(c.user_agent.major.as_deref(), c.user_agent.minor.as_deref()),
        os: c.os.family.to_string(),
        os_version: version(c.os.major.as_deref(), c.os.minor.as_deref()),
        device: c.device.family.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrome_on_linux() {
        let c = parse("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.121 Safari/537.36");
        assert_eq!(c.browser, "Chrome");
        assert_eq!(c.browser_version, "72.0");
        assert_eq!(c.os, "Linux");
        assert_eq!(c.os_version, "");
        assert_eq!(c.device, "Other");
        let iphone = parse("Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1");
        assert_eq!(iphone.device, "iPhone");
        assert_eq!(iphone.os, "iOS");
    }
}
