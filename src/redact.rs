//! Secrets out of what is shown: URLs with their passwords masked, for
//! logs and error messages.
//!
//! **Invariant:** nothing that reaches a log or an error text carries a
//! password given in a URL's user info or a secret query parameter.

/// `url` with the password (if any) replaced by `***`, for logs: the one in
/// the user info and query parameters such as `?password=` (PostgreSQL and
/// redis-rs take those too).
pub fn mask_url(url: &str) -> String {
    let masked = mask_userinfo(url);
    let Some((base, query)) = masked.split_once('?') else {
        return masked;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=***")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "pass", "pwd", "sslpassword", "token", "secret"];

fn mask_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth_end, _) = rest
        .char_indices()
        .find(|(_, c)| *c == '/' || *c == '?')
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(auth_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or(userinfo);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            mask_url("amqp://guest:guest@localhost:5672/vh"),
            "amqp://guest:***@localhost:5672/vh"
        );
        assert_eq!(mask_url("redis://host/0"), "redis://host/0");
        assert_eq!(mask_url("redis://user@host"), "redis://user@host");
        assert_eq!(
            mask_url("rediss://u:p@ss@h/0?x=1"),
            "rediss://u:***@h/0?x=1"
        );
        assert_eq!(
            mask_url("postgres://h/db?user=a&password=s3cret&sslmode=require"),
            "postgres://h/db?user=a&password=***&sslmode=require"
        );
    }
}
