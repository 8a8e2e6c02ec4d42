//! `multipart/mixed` bodies (RFC 2046 section 5.1) whose parts are base64 text, as EST
//! `serverkeygen` answers (RFC 7030 section 4.4.2: the private key and the certificate, each
//! with `Content-Transfer-Encoding: base64`).
//!
//! Composed here rather than with a crate: the maintained MIME builders (`mail-builder`,
//! `lettre`) write e-mail messages, choose their own boundary and transfer encoding and quote
//! parameters, while libest's `estclient` compares each part's `Content-Type` byte for byte
//! (`application/pkcs7-mime; smime-type=certs-only`) and the boundary must also go into the
//! HTTP header; `multipart` and `multer` parse form data. What is written is a few fixed
//! lines around base64 text, nothing is parsed.
//!
//! The boundary is [`BOUNDARY`]: it holds `-`, which is not in the base64 alphabet (RFC 4648
//! section 4), so its delimiter line (`--` and the boundary) cannot occur in any part.

use zeroize::Zeroizing;

/// The boundary of every body: `-` and `_` are outside the base64 alphabet, and the
/// characters are all RFC 2046 `bcharsnospace`, so it needs no quoting.
pub const BOUNDARY: &str = "estca-part_boundary";

/// The `Content-Type` of a body made by [`mixed`].
pub const CONTENT_TYPE: &str = "multipart/mixed; boundary=estca-part_boundary";

/// One part: its media type and its content as base64 text (line breaks allowed, CRLF).
pub struct Base64Part<'a> {
    /// The part's `Content-Type`, e.g. `application/pkcs8`.
    pub content_type: &'a str,
    /// Its content, base64 (RFC 2045 section 6.8 lines or one line).
    pub base64: &'a str,
}

/// The body of a `multipart/mixed` message with these parts, in order, each with
/// `Content-Transfer-Encoding: base64`. Zeroized when dropped, and allocated once (no
/// reallocation leaves a copy behind), as it may hold a private key.
pub fn mixed(parts: &[Base64Part<'_>]) -> Zeroizing<String> {
    const PART_HEADERS: usize = 128;
    let capacity = parts
        .iter()
        .map(|p| p.content_type.len() + p.base64.len() + BOUNDARY.len() + PART_HEADERS)
        .sum::<usize>()
        + BOUNDARY.len()
        + 8;
    let mut body = Zeroizing::new(String::with_capacity(capacity));
    for part in parts {
        body.push_str("--");
        body.push_str(BOUNDARY);
        body.push_str("\r\nContent-Type: ");
        body.push_str(part.content_type);
        body.push_str("\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        // The CRLF before the next delimiter belongs to the delimiter (RFC 2046 5.1.1).
        body.push_str(part.base64.trim_end_matches(['\r', '\n']));
        body.push_str("\r\n");
    }
    body.push_str("--");
    body.push_str(BOUNDARY);
    body.push_str("--\r\n");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_delimited_and_typed_in_order() {
        let body = mixed(&[
            Base64Part {
                content_type: "application/pkcs8",
                base64: "QUJD\r\nREVG\r\n",
            },
            Base64Part {
                content_type: "application/pkcs7-mime; smime-type=certs-only",
                base64: "R0hJ",
            },
        ]);
        assert_eq!(
            body.as_str(),
            "--estca-part_boundary\r\n\
             Content-Type: application/pkcs8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n\
             QUJD\r\nREVG\r\n\
             --estca-part_boundary\r\n\
             Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n\
             R0hJ\r\n\
             --estca-part_boundary--\r\n"
        );
        assert!(body.capacity() >= body.len());
        assert!(CONTENT_TYPE.ends_with(BOUNDARY));
    }

    #[test]
    fn the_boundary_cannot_occur_in_base64() {
        assert!(BOUNDARY
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || "+/=".contains(c))));
        assert!(
            BOUNDARY.len() <= 70,
            "RFC 2046 limits a boundary to 70 characters"
        );
    }
}
