//! `estca crl ...`: the CRL the daemon publishes, read over the admin socket.

use clap::Subcommand;

use super::client::AdminClient;
use crate::model::rfc3339;
use crate::revocation::CrlView;

/// `estca crl ...`.
#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Show the current CRL: number, thisUpdate, nextUpdate and its entries.
    Show,
}

/// Runs a `crl` command.
pub async fn run(
    client: &AdminClient<'_>,
    command: CrlCommand,
    json: bool,
) -> Result<(), super::Failure> {
    match command {
        CrlCommand::Show => {
            let view: CrlView = client.get("/api/v1/crl").await?;
            super::output::write(render(&view, json).as_bytes())?;
        }
    }
    Ok(())
}

/// The text `crl show` prints: JSON, or aligned lines for people.
pub fn render(view: &CrlView, json: bool) -> String {
    if json {
        return match serde_json::to_string_pretty(view) {
            Ok(text) => format!("{text}\n"),
            Err(e) => format!("{{\"error\": \"cannot print JSON: {e}\"}}\n"),
        };
    }
    let mut out = format!(
        "CRL number:   {}\nthis update:  {}\nnext update:  {}\nentries:      {}\n",
        view.number,
        rfc3339(view.this_update),
        rfc3339(view.next_update),
        view.entries.len()
    );
    if !view.entries.is_empty() {
        let serial_width = 32;
        out.push_str(&format!(
            "\n{:<serial_width$}  {:<20}  REASON\n",
            "SERIAL", "REVOKED"
        ));
        for e in &view.entries {
            out.push_str(&format!(
                "{:<serial_width$}  {:<20}  {}\n",
                e.serial.to_string(),
                rfc3339(e.revoked_at),
                e.reason
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RevocationReason;
    use crate::revocation::CrlEntryView;

    #[test]
    fn text_and_json_show_number_times_and_entries() {
        let view = CrlView {
            number: 7,
            this_update: time::macros::datetime!(2026-01-04 00:00:00 UTC),
            next_update: time::macros::datetime!(2026-01-05 00:00:00 UTC),
            entries: vec![CrlEntryView {
                serial: "441e22181c34f93d0f0e6bca0f6dcf52".parse().unwrap(),
                revoked_at: time::macros::datetime!(2026-01-03 12:00:00 UTC),
                reason: RevocationReason::KeyCompromise,
            }],
        };
        let text = render(&view, false);
        assert!(text.contains("CRL number:   7"), "{text}");
        assert!(
            text.contains("next update:  2026-01-05T00:00:00Z"),
            "{text}"
        );
        assert!(
            text.contains("441e22181c34f93d0f0e6bca0f6dcf52  2026-01-03T12:00:00Z"),
            "{text}"
        );
        assert!(text.contains("keyCompromise"), "{text}");
        let back: CrlView = serde_json::from_str(&render(&view, true)).unwrap();
        assert_eq!(back, view);
    }
}
