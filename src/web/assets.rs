//! The browser screens' files, embedded in the binary: the pages and their style from
//! `web/static`, the scripts from `web/dist` (built from `web/src` by `npm run build` in
//! `web/`, and committed, so that building estca needs no Node.js).

/// One embedded file: its URL path, media type and bytes.
pub struct Asset {
    /// Where it is served.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// Every embedded file. The pages (`/enroll`, `/console`) are HTML; their script and style
/// are under `/assets/`, same-origin, as the Content-Security-Policy requires.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/enroll",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../web/static/enroll.html"),
    },
    Asset {
        path: "/console",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../web/static/console.html"),
    },
    Asset {
        path: "/assets/enroll.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/dist/enroll.js"),
    },
    Asset {
        path: "/assets/console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/dist/console.js"),
    },
    Asset {
        path: "/assets/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/static/style.css"),
    },
];
