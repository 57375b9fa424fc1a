//! Splitting a request URL into the server to connect to and the path to
//! ask for.
//!
//! A full URL parser would choke on `{id}` placeholders in the path and
//! gives nothing the plugin needs beyond host, port and the rest, so this
//! is a small split of `http[s]://host[:port]/path?query`.

use crate::template::{Piece, Template};

/// How a server is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    /// HTTP/1.1 over TLS.
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// The `Host` header: the authority as the URL wrote it.
    pub authority: String,
}

/// Splits a compiled URL into its server (which must not depend on a
/// per-call value) and its path template.
pub fn split(url: &Template) -> Result<(Server, Template), String> {
    let first = match url.pieces.first() {
        Some(Piece::Text(text)) => String::from_utf8_lossy(text).into_owned(),
        _ => String::new(),
    };
    let lower = first.to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("http://") {
        (Scheme::Http, &first["http://".len()..])
    } else if lower.starts_with("https://") {
        (Scheme::Https, &first["https://".len()..])
    } else {
        return Err(format!(
            "a URL must start with http:// or https://, found `{}`",
            render_for_message(url)
        ));
    };
    let end = rest.find(['/', '?', '#']);
    // `{base}{where}`: a captured path (a Location header, say) may follow
    // the host directly; anything else there would change the host.
    let path_follows = matches!(url.pieces.get(1), Some(Piece::Var(_))) && !rest.ends_with(':');
    if end.is_none() && url.pieces.len() > 1 && !path_follows {
        return Err(
            "the host and port of a URL cannot use {number} or a captured variable".to_string(),
        );
    }
    let authority = &rest[..end.unwrap_or(rest.len())];
    let server = server(scheme, authority)?;
    let mut path = Template::default();
    match end.map(|e| &rest[e..]) {
        Some(tail) if tail.starts_with('/') => path.append(&Template::text(tail)),
        Some(tail) if tail.starts_with('?') => path.append(&Template::text(format!("/{tail}"))),
        None if path_follows => {}
        _ => path.append(&Template::text("/")),
    }
    path.pieces.extend(url.pieces.iter().skip(1).cloned());
    // The fragment is for browsers; it is never sent.
    if let Some(Piece::Text(text)) = path.pieces.last_mut() {
        if let Some(hash) = text.iter().position(|b| *b == b'#') {
            text.truncate(hash);
        }
    }
    Ok((server, path))
}

fn server(scheme: Scheme, authority: &str) -> Result<Server, String> {
    if authority.contains('@') {
        return Err(format!(
            "`{authority}`: user names in URLs are not supported; send an Authorization header"
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        // An IPv6 literal: [::1]:8080
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("`{authority}` is not a valid host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("a URL needs a host, as in http://127.0.0.1:8080/".to_string());
    }
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{text}` is not a valid port"))?,
    };
    Ok(Server {
        scheme,
        host: host.to_string(),
        port,
        authority: authority.to_string(),
    })
}

fn render_for_message(url: &Template) -> String {
    url.pieces
        .iter()
        .map(|p| match p {
            Piece::Text(text) => String::from_utf8_lossy(text).into_owned(),
            Piece::Number => "{number}".to_string(),
            _ => "{…}".to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Piece;

    fn split_text(url: &str) -> Result<(Server, String), String> {
        let mut resolve = |name: &str| match name {
            "where" => Ok(Template {
                pieces: vec![Piece::Var(0)],
            }),
            _ => Err(format!("unknown {name}")),
        };
        let template = Template::compile(url, &mut resolve).unwrap();
        split(&template).map(|(server, path)| {
            let mut out = Vec::new();
            path.render(&mut out, 5, &["/items/3".to_string()]);
            (server, String::from_utf8(out).unwrap())
        })
    }

    #[test]
    fn urls_split() {
        let (server, path) = split_text("http://127.0.0.1:8080/items/{number}?a=1#top").unwrap();
        assert_eq!((server.host.as_str(), server.port), ("127.0.0.1", 8080));
        assert_eq!(server.authority, "127.0.0.1:8080");
        assert_eq!(path, "/items/5?a=1");
        let (server, path) = split_text("HTTP://example.com").unwrap();
        assert_eq!(
            (server.host.as_str(), server.port, path.as_str()),
            ("example.com", 80, "/")
        );
        let (server, path) = split_text("http://h:1{{where}}").unwrap();
        assert_eq!(
            (server.authority.as_str(), path.as_str()),
            ("h:1", "/items/3")
        );
        let (server, path) = split_text("https://api.test/v1").unwrap();
        assert_eq!(
            (
                server.scheme,
                server.host.as_str(),
                server.port,
                path.as_str()
            ),
            (Scheme::Https, "api.test", 443, "/v1")
        );
        assert_eq!(server.authority, "api.test");
        let (server, path) = split_text("http://[::1]:81?q").unwrap();
        assert_eq!(
            (server.host.as_str(), server.port, path.as_str()),
            ("::1", 81, "/?q")
        );
    }

    #[test]
    fn bad_urls_are_explained() {
        for (url, expected) in [
            ("ftp://h/", "must start with http:// or https://"),
            ("http://h{number}/", "cannot use {number}"),
            ("http://h:{{where}}/", "cannot use {number}"),
            ("http://h:99999/", "not a valid port"),
            ("http://u@h/", "user names"),
            ("http:///x", "needs a host"),
        ] {
            let error = split_text(url).unwrap_err();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }
}
