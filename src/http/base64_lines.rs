//! How base64 bodies are laid out in EST answers: RFC 7030 section 4 sends base64 "as
//! specified in RFC 2045", whose encoded lines are at most 76 characters (section 6.8), and
//! libest decodes them with OpenSSL's line-based reader, which fails on one long line. The
//! `est-ca` crate's client, on the contrary, reads one line only: `est.single_line_base64`
//! serves it.

use base64::Engine;
use zeroize::Zeroizing;

/// The longest encoded line RFC 2045 section 6.8 allows.
pub const RFC2045_LINE: usize = 76;

/// The layout of base64 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Lines {
    /// Lines of 76 characters (`RFC2045_LINE`) ended by CRLF, as RFC 7030 asks (the default).
    Wrapped,
    /// One line without a line break (`est.single_line_base64 = true`).
    SingleLine,
}

impl Base64Lines {
    /// The layout `est.single_line_base64` asks for.
    pub fn from_single_line(single_line: bool) -> Self {
        if single_line {
            Self::SingleLine
        } else {
            Self::Wrapped
        }
    }

    /// `der` in standard base64 (RFC 4648 section 4, padded), laid out as `self` says.
    pub fn encode(self, der: &[u8]) -> String {
        let text = base64::engine::general_purpose::STANDARD.encode(der);
        match self {
            Self::SingleLine => text,
            Self::Wrapped => wrap(&text),
        }
    }

    /// As [`Base64Lines::encode`], for secret bytes (a private key): every copy of the text
    /// is zeroized when dropped.
    pub fn encode_secret(self, der: &[u8]) -> Zeroizing<String> {
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
        match self {
            Self::SingleLine => text,
            Self::Wrapped => Zeroizing::new(wrap(&text)),
        }
    }
}

/// `text` in lines of [`RFC2045_LINE`] characters, each ended by CRLF, in a string allocated
/// once (no reallocation leaves a copy behind).
fn wrap(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / RFC2045_LINE * 2 + 2);
    let mut rest = text;
    while !rest.is_empty() {
        // base64 text is ASCII, so every byte is a character boundary and the cut always
        // succeeds (a line is copied as it is, not checked again as UTF-8).
        let (line, tail) = rest
            .split_at_checked(rest.len().min(RFC2045_LINE))
            .unwrap_or((rest, ""));
        out.push_str(line);
        out.push_str("\r\n");
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_are_76_characters_and_decode_back() {
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let wrapped = Base64Lines::Wrapped.encode(&der);
        let lines: Vec<&str> = wrapped.split_terminator("\r\n").collect();
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.len() <= RFC2045_LINE));
        assert!(lines[..lines.len() - 1]
            .iter()
            .all(|l| l.len() == RFC2045_LINE));
        assert!(wrapped.ends_with("\r\n"));
        let joined: String = lines.concat();
        let single = Base64Lines::SingleLine.encode(&der);
        assert_eq!(joined, single);
        assert!(!single.contains('\n'));
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(single)
                .unwrap(),
            der
        );
    }
}
