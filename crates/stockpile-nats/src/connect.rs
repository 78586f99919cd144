//! Connecting to NATS with the service's own credentials, and saying clearly why it failed.
//!
//! A service started while NATS is unreachable, or with credentials the server refuses,
//! either exits at once with a message naming the server and the cause, or — when
//! configured to wait — retries with a bounded back-off until it connects or is shut down.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_nats::{Client, ConnectErrorKind, ConnectOptions, ServerAddr};
use serde::{Deserialize, Serialize};

/// Time one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between two attempts when waiting for NATS.
pub const CONNECT_RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);

/// How a service reaches NATS.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NatsConfig {
    /// Server URL(s), comma separated, e.g. `nats://127.0.0.1:4222` or, for a cluster,
    /// `nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222`. The client
    /// connects to one of them and, when that server goes away, reconnects to another
    /// (and to servers the cluster announces).
    pub url: String,
    /// User and password (the `deploy/nats` configurations give each service its own).
    pub user: Option<String>,
    pub password: Option<String>,
    /// A `.creds` file (JWT + nkey seed), for operator-mode deployments.
    pub creds_file: Option<PathBuf>,
    /// Keep retrying until NATS answers instead of failing at once.
    pub wait: bool,
    /// The connection name the server shows in its monitoring.
    pub client_name: Option<String>,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> NatsConfig {
        NatsConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    async fn options(&self) -> anyhow::Result<ConnectOptions> {
        let mut options = ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .name(self.client_name.as_deref().unwrap_or("stockpile"));
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => {
                options = options.user_and_password(user.clone(), password.clone());
            }
            (None, None) => {}
            _ => {
                return Err(anyhow!(
                    "a NATS user needs a password, and a password a user"
                ));
            }
        }
        if let Some(path) = &self.creds_file {
            options = ConnectOptions::with_credentials_file(path)
                .await
                .with_context(|| format!("reading NATS credentials {}", path.display()))?
                .connection_timeout(CONNECT_TIMEOUT)
                .name(self.client_name.as_deref().unwrap_or("stockpile"));
        }
        Ok(options)
    }
}

/// Connects once, or — with `wait` — until it succeeds. Errors name the server and say
/// what to check.
pub async fn connect(config: &NatsConfig) -> anyhow::Result<Client> {
    let servers = server_addrs(&config.url)?;
    let mut pause = Duration::from_millis(100);
    loop {
        let options = config.options().await?;
        match options.connect(servers.clone()).await {
            Ok(client) => return Ok(client),
            Err(error) => {
                let message = describe_connect_error(&config.url, &error);
                // Waiting helps only against a server that is not up yet; refused
                // credentials or a bad URL will not get better.
                let permanent = matches!(
                    error.kind(),
                    ConnectErrorKind::ServerParse
                        | ConnectErrorKind::AuthorizationViolation
                        | ConnectErrorKind::Authentication
                );
                if !config.wait || permanent {
                    return Err(anyhow!(message));
                }
                tracing::warn!(url = %config.url, "{message}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(CONNECT_RETRY_PAUSE_MAX);
            }
        }
    }
}

/// The servers of a comma-separated URL list (async-nats itself reads one URL from a
/// string, so `a,b,c` would be one malformed address).
pub fn server_addrs(urls: &str) -> anyhow::Result<Vec<ServerAddr>> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<ServerAddr>()
                .map_err(|error| anyhow!("NATS URL {url:?} is not valid: {error}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if servers.is_empty() {
        return Err(anyhow!("no NATS URL given ({urls:?})"));
    }
    Ok(servers)
}

fn describe_connect_error(url: &str, error: &async_nats::ConnectError) -> String {
    match error.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => format!(
            "NATS at {url} refused the credentials ({error}): check the user, password or creds file"
        ),
        ConnectErrorKind::ServerParse => format!("NATS URL {url:?} is not valid: {error}"),
        ConnectErrorKind::TimedOut | ConnectErrorKind::Io | ConnectErrorKind::Dns => format!(
            "cannot reach NATS at {url} ({error}): is nats-server running there? (--wait-for-nats keeps retrying)"
        ),
        _ => format!("cannot connect to NATS at {url}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::server_addrs;

    #[test]
    fn a_comma_separated_list_is_several_servers() {
        let servers =
            server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,127.0.0.1:4224").unwrap();
        let ports: Vec<u16> = servers.iter().map(|s| s.port()).collect();
        assert_eq!(ports, [4222, 4223, 4224]);
        assert_eq!(server_addrs("nats://127.0.0.1:4222").unwrap().len(), 1);
    }

    #[test]
    fn a_bad_url_in_the_list_is_named() {
        let error = server_addrs("nats://127.0.0.1:4222,http://x:1").unwrap_err();
        assert!(error.to_string().contains("http://x:1"), "{error}");
        assert!(server_addrs(" , ").is_err());
    }
}
