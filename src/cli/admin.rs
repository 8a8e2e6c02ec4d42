//! The administrative commands: each a call of the management API over the admin socket,
//! its answer printed as text or JSON.

use std::io::BufRead;

use serde_json::json;

use crate::api::{CertificateActionBody, CreatedApp, HistoryPage};
use crate::config::Config;
use crate::ra::{AccountView, AppView, CertificateView, ContractView};

use super::client::AdminClient;
use super::failure::Failure;
use super::{crl, output};

use super::args::{
    AccountCommand, AdminCommand, AppCommand, CertCommand, ContractCommand, HistoryArgs,
};

/// The password of `--password-stdin`: typed twice at a prompt without echo when standard input
/// is a terminal, else one line of standard input (without its line ending).
fn password_from_stdin(flag: bool) -> Result<zeroize::Zeroizing<String>, String> {
    if !flag {
        return Err("give --password-stdin and write the password on standard input (passwords never go on the command line)".into());
    }
    let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let prompt = |text: &str| {
            rpassword::prompt_password(text)
                .map(zeroize::Zeroizing::new)
                .map_err(|e| format!("cannot read the password from the terminal: {e}"))
        };
        let first = prompt("Password: ")?;
        if *prompt("Password again: ")? != *first {
            return Err("the two passwords differ; nothing was changed".into());
        }
        first
    } else {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    if password.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(password)
}

/// Asks on the terminal whether to remove the ID `view` shows (its ID and name, and what
/// removal does), unless standard input is not a terminal, where `--yes` is required.
fn confirm_removal(view: &AccountView) -> Result<(), String> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(format!(
            "removing an ID cannot be undone: confirm on a terminal, or give --yes (estca account remove {} --yes)",
            view.id
        ));
    }
    let certificate = match &view.certificate {
        Some(c) if c.status == crate::model::CertificateStatus::Active => format!(
            "its certificate {} will be revoked (cessationOfOperation)",
            c.serial
        ),
        _ => "it has no certificate to revoke".to_owned(),
    };
    eprint!(
        "Remove the {} ID {} ({}) of contract {}? {certificate}; the ID can never log in or be \
         created again (its certificates and history stay). Type yes to remove it: ",
        view.role, view.id, view.name, view.contract
    );
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| format!("cannot read the answer from the terminal: {e}"))?;
    if answer.trim() != "yes" {
        return Err(format!("not removed: {} is unchanged", view.id));
    }
    Ok(())
}

/// What a path segment given on the command line keeps as it is: letters, digits and
/// `-_.@`; everything else is percent-encoded (RFC 3986 section 2.1).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'@');

/// Percent-encodes a path segment given on the command line.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

pub(super) async fn administer(
    config: &Config,
    command: AdminCommand,
    json: bool,
) -> Result<(), Failure> {
    let client = AdminClient::new(&config.admin.socket);
    let print_account = |view: &AccountView| output::account(view, json);
    match command {
        AdminCommand::Contract(ContractCommand::Add {
            code,
            name,
            server_keygen,
        }) => {
            let contract: ContractView = client
                .post(
                    "/api/v1/contracts",
                    &json!({
                        "code": code, "name": name,
                        "server_keygen": server_keygen.unwrap_or(false),
                    }),
                )
                .await?;
            output::contract_created(&contract, json)?;
        }
        AdminCommand::Contract(ContractCommand::Edit {
            code,
            server_keygen,
        }) => {
            let contract: ContractView = client
                .patch(
                    &format!("/api/v1/contracts/{}", segment(&code)),
                    &json!({ "server_keygen": server_keygen.unwrap_or(true) }),
                )
                .await?;
            output::contract(&contract, json)?;
        }
        AdminCommand::Contract(ContractCommand::Show { code }) => {
            let contract: ContractView = client
                .get(&format!("/api/v1/contracts/{}", segment(&code)))
                .await?;
            output::contract(&contract, json)?;
        }
        AdminCommand::Contract(ContractCommand::List) => {
            let contracts: Vec<ContractView> = client.get_all("/api/v1/contracts").await?;
            output::contracts(&contracts, json)?;
        }
        AdminCommand::Account(AccountCommand::Add {
            id,
            contract,
            role,
            name,
            password_stdin,
        }) => {
            let password = password_from_stdin(password_stdin)?;
            let mut body = json!({
                "contract": contract, "role": role, "name": name,
                "password": password.as_str(),
            });
            if let Some(id) = id {
                body["id"] = json!(id);
            }
            let view: AccountView = client.post("/api/v1/accounts", &body).await?;
            print_account(&view)?;
        }
        AdminCommand::Account(AccountCommand::Passwd { id, password_stdin }) => {
            let password = password_from_stdin(password_stdin)?;
            let view: AccountView = client
                .patch(
                    &format!("/api/v1/accounts/{}", segment(&id)),
                    &json!({ "password": password.as_str() }),
                )
                .await?;
            print_account(&view)?;
        }
        AdminCommand::Account(AccountCommand::List { contract }) => {
            let path = match contract {
                Some(c) => format!("/api/v1/accounts?contract={}", segment(&c)),
                None => "/api/v1/accounts".to_owned(),
            };
            let views: Vec<AccountView> = client.get_all(&path).await?;
            output::accounts(&views, json)?;
        }
        AdminCommand::Account(AccountCommand::Show { id }) => {
            let view: AccountView = client
                .get(&format!("/api/v1/accounts/{}", segment(&id)))
                .await?;
            print_account(&view)?;
        }
        AdminCommand::Account(AccountCommand::Reissue { id }) => {
            certificate_action(&client, &id, "reissue", None, json).await?
        }
        AdminCommand::Account(AccountCommand::Continue { id }) => {
            certificate_action(&client, &id, "continue", None, json).await?
        }
        AdminCommand::Account(AccountCommand::Revoke { id, reason }) => {
            certificate_action(&client, &id, "revoke", Some(reason.name().to_owned()), json).await?
        }
        AdminCommand::Account(AccountCommand::Unlock { id }) => {
            let view: AccountView = client
                .post(
                    &format!("/api/v1/accounts/{}/unlock", segment(&id)),
                    &json!({}),
                )
                .await?;
            print_account(&view)?;
        }
        AdminCommand::Account(AccountCommand::Remove { id, yes }) => {
            let path = format!("/api/v1/accounts/{}", segment(&id));
            if !yes {
                let view: AccountView = client.get(&path).await?;
                confirm_removal(&view)?;
            }
            let view: AccountView = client.post(&format!("{path}/remove"), &json!({})).await?;
            print_account(&view)?;
        }
        AdminCommand::History(HistoryArgs {
            id,
            limit,
            cursor,
            all,
        }) => {
            let mut query = format!("/api/v1/history?limit={limit}");
            if let Some(id) = id {
                query.push_str(&format!("&account={}", segment(&id)));
            }
            let mut page = HistoryPage {
                entries: Vec::new(),
                next_cursor: cursor,
            };
            loop {
                let path = match &page.next_cursor {
                    Some(cursor) => format!("{query}&cursor={}", segment(cursor)),
                    None => query.clone(),
                };
                let next: HistoryPage = client.get(&path).await?;
                page.entries.extend(next.entries);
                page.next_cursor = next.next_cursor;
                if !all || page.next_cursor.is_none() {
                    break;
                }
            }
            output::history(&page, json)?;
        }
        AdminCommand::App(AppCommand::Add {
            name,
            contracts,
            all,
            can_create_contracts,
            csr,
            hosts,
        }) => {
            let csr = std::fs::read_to_string(&csr)
                .map_err(|e| format!("cannot read the CSR {}: {e}", csr.display()))?;
            let body = json!({
                "name": name,
                "contracts": if all { None } else { Some(contracts) },
                "all": all,
                "can_create_contracts": can_create_contracts,
                "csr": csr,
                "hosts": hosts,
            });
            let created: CreatedApp = client.post("/api/v1/apps", &body).await?;
            output::app_created(&created, json)?;
        }
        AdminCommand::App(AppCommand::List) => {
            let apps: Vec<AppView> = client.get_all("/api/v1/apps").await?;
            output::apps(&apps, json)?;
        }
        AdminCommand::App(AppCommand::Revoke { name }) => {
            let app: AppView = client
                .post(
                    &format!("/api/v1/apps/{}/revoke", segment(&name)),
                    &json!({}),
                )
                .await?;
            output::apps(&[app], json)?;
        }
        AdminCommand::Cert(CertCommand::Show { serial }) => {
            let view: CertificateView = client
                .get(&format!("/api/v1/certificates/{}", segment(&serial)))
                .await?;
            output::certificate(&view, json)?;
        }
        AdminCommand::Crl(command) => crl::run(&client, command, json).await?,
    }
    Ok(())
}

async fn certificate_action(
    client: &AdminClient<'_>,
    id: &str,
    action: &str,
    reason: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let view: AccountView = client
        .post(
            &format!("/api/v1/accounts/{}/certificate", segment(id)),
            &CertificateActionBody {
                action: action.to_owned(),
                reason,
            },
        )
        .await?;
    Ok(output::account(&view, json)?)
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_are_percent_encoded_but_for_unreserved_characters() {
        assert_eq!(segment("nozawa1"), "nozawa1");
        assert_eq!(segment("a.b-c_d@e"), "a.b-c_d@e");
        assert_eq!(segment("../x y/?#"), "..%2Fx%20y%2F%3F%23");
        assert_eq!(segment("大手"), "%E5%A4%A7%E6%89%8B");
    }
}
