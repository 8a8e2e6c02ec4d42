// /console: the notice's 管理機能 for a master ID, logged in by the client certificate estca
// issued to it (TLS client authentication; no password). Every read and change is a call to
// the management API (/api/v1), which decides who may do what; this page only shows it.
// Over the admin socket (an SSH tunnel to it) the same page is the operator's view of all
// contracts, because the API answers the operator there.

import { setupLanguage } from "./i18n.js";
import { sentenceOf, showRefusal } from "./refusals.js";
import { WORDS } from "./console_words.js";

const $ = (id) => document.getElementById(id);
let words;
let accounts = [];
let selectedId = null;
let current = "screen-select";
let lastHistory = [];
let lastDone = null;

/** One management API call; resolves to the parsed answer or throws {status, sentence}. */
async function api(method, path, body) {
  let response;
  try {
    response = await fetch(`/api/v1/${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw { status: 0, sentence: "estca could not be reached; check the network" };
  }
  if (!response.ok) throw { status: response.status, sentence: await sentenceOf(response) };
  return response.json();
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function stateOf(account) {
  const w = words();
  if (account.locked) return w.stateLocked;
  if (account.certificate_choice === "reissue") return w.stateReissue;
  if (account.certificate_choice === "revoked") return w.stateRevoked;
  return account.certificate ? w.stateActive : w.stateNone;
}

function show(screen) {
  current = screen;
  for (const el of document.querySelectorAll(".screen")) el.hidden = el.id !== screen;
  for (const el of document.querySelectorAll("nav.menu button")) {
    el.classList.toggle("current", el.dataset.screen === screen || (el.dataset.screen === "screen-select" && ["screen-edit", "screen-new", "screen-remove", "screen-done"].includes(screen)));
  }
  const box = $("error");
  box.hidden = true;
}

function fail(error) {
  showRefusal($("error"), error.status ?? 0, error.sentence ?? String(error));
}

function radioRow(name, account, checked) {
  const tr = document.createElement("tr");
  const pick = document.createElement("td");
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = name;
  radio.value = account.id;
  radio.checked = checked;
  radio.setAttribute("aria-label", account.id);
  pick.append(radio);
  tr.append(pick);
  return tr;
}

function drawAccounts() {
  const w = words();
  // A redraw (a language switch) keeps what the administrator had chosen.
  const pickedAccount = chosen("account") ?? selectedId;
  const pickedLocked = chosen("locked");
  const body = $("accounts-body");
  body.replaceChildren(
    ...accounts.map((a) => {
      const tr = radioRow("account", a, a.id === pickedAccount);
      tr.append(
        cell(a.id),
        cell(a.name),
        cell(a.role === "master" ? w.master : w.user),
        cell(stateOf(a)),
        cell(String(a.issued_count)),
        cell(a.contract),
      );
      return tr;
    }),
  );
  const locked = accounts.filter((a) => a.locked);
  $("locked-body").replaceChildren(
    ...locked.map((a) => {
      const tr = radioRow("locked", a, a.id === pickedLocked);
      tr.append(cell(a.id), cell(a.name), cell(String(a.failed_attempts)));
      return tr;
    }),
  );
  $("none-locked").hidden = locked.length > 0;
  const filter = $("history-account");
  const keep = filter.value;
  const all = document.createElement("option");
  all.value = "";
  all.textContent = w.historyAll;
  filter.replaceChildren(
    all,
    ...accounts.map((a) => Object.assign(document.createElement("option"), { value: a.id, textContent: a.id })),
  );
  filter.value = keep;
}

function drawHistory() {
  $("history-body").replaceChildren(
    ...lastHistory.map((e) => {
      const tr = document.createElement("tr");
      const actor = e.actor.id ?? e.actor.name ?? e.actor.kind;
      const result = e.outcome.result === "ok" ? e.outcome.detail : `${e.outcome.result}: ${e.outcome.reason}`;
      tr.append(cell(e.at), cell(e.account ?? ""), cell(e.kind), cell(actor), cell(e.source), cell(result));
      return tr;
    }),
  );
}

function drawDone() {
  if (!lastDone) return;
  const w = words();
  $("done-text").textContent = w[lastDone.what];
  $("done-id").textContent = `${w.doneIdPrefix}${lastDone.id}${w.doneIdSuffix}`;
}

async function loadAccounts() {
  const all = [];
  let path = "accounts";
  for (;;) {
    const response = await fetch(`/api/v1/${path}`, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw { status: response.status, sentence: await sentenceOf(response) };
    all.push(...(await response.json()));
    const next = /<\/api\/v1\/([^>]*)>;\s*rel="next"/.exec(response.headers.get("Link") || "");
    if (!next) break;
    path = next[1];
  }
  accounts = all;
  drawAccounts();
  if (!$("new-contract").value && accounts.length > 0) $("new-contract").value = accounts[0].contract;
}

function done(what, id) {
  lastDone = { what, id };
  drawDone();
  show("screen-done");
}

function chosen(name) {
  const radio = document.querySelector(`input[name="${name}"]:checked`);
  return radio ? radio.value : null;
}

function openEdit() {
  const id = chosen("account");
  if (!id) return fail({ status: 400, sentence: words().chooseFirst });
  selectedId = id;
  const account = accounts.find((a) => a.id === id);
  $("edit-id").textContent = id;
  $("edit-name").value = account ? account.name : "";
  $("edit-password").value = "";
  for (const radio of document.querySelectorAll('input[name="certificate"]')) radio.checked = false;
  show("screen-edit");
}

async function saveEdit(event) {
  event.preventDefault();
  const id = selectedId;
  const account = accounts.find((a) => a.id === id);
  const change = {};
  const name = $("edit-name").value.trim();
  if (account && name && name !== account.name) change.name = name;
  if ($("edit-password").value) change.password = $("edit-password").value;
  const action = chosen("certificate");
  if (Object.keys(change).length === 0 && !action) return fail({ status: 400, sentence: words().nothingToDo });
  try {
    const path = `accounts/${encodeURIComponent(id)}`;
    if (Object.keys(change).length > 0) await api("PATCH", path, change);
    if (action) await api("POST", `${path}/certificate`, { action });
    $("edit-password").value = "";
    await loadAccounts();
    done("doneChanged", id);
  } catch (error) {
    fail(error);
  }
}

// 削除: a confirmation step showing the ID, its name and what removal does, then the API's
// remove (POST, so the same-origin check of every state change applies). The API decides
// who may remove whom (a master: the public IDs of its contract).
function openRemove() {
  const id = chosen("account");
  if (!id) return fail({ status: 400, sentence: words().chooseFirst });
  selectedId = id;
  drawRemove();
  show("screen-remove");
}

function drawRemove() {
  const account = accounts.find((a) => a.id === selectedId);
  if (!account) return;
  const w = words();
  $("remove-id").textContent = account.id;
  $("remove-name").textContent = account.name;
  const active = account.certificate && account.certificate.status === "active";
  $("remove-certificate").textContent = active ? w.removeCertificate(account.certificate.serial) : w.removeNoCertificate;
}

async function remove() {
  const id = selectedId;
  try {
    await api("POST", `accounts/${encodeURIComponent(id)}/remove`);
    await loadAccounts();
    done("doneRemoved", id);
  } catch (error) {
    fail(error);
  }
}

async function saveNew(event) {
  event.preventDefault();
  const body = {
    contract: $("new-contract").value.trim(),
    role: $("new-role").value,
    name: $("new-name").value.trim(),
    password: $("new-password").value,
  };
  const id = $("new-id").value.trim();
  if (id) body.id = id;
  try {
    const created = await api("POST", "accounts", body);
    $("new-form").reset();
    await loadAccounts();
    done("doneCreated", created.id);
  } catch (error) {
    fail(error);
  }
}

async function unlock() {
  const id = chosen("locked");
  if (!id) return fail({ status: 400, sentence: words().chooseFirst });
  try {
    await api("POST", `accounts/${encodeURIComponent(id)}/unlock`);
    await loadAccounts();
    done("doneUnlocked", id);
  } catch (error) {
    fail(error);
  }
}

async function searchHistory(event) {
  event.preventDefault();
  const account = $("history-account").value;
  const query = new URLSearchParams({ limit: "100" });
  if (account) query.set("account", account);
  try {
    lastHistory = (await api("GET", `history?${query}`)).entries;
    drawHistory();
  } catch (error) {
    fail(error);
  }
}

async function init() {
  words = setupLanguage(WORDS, () => {
    drawAccounts();
    drawDone();
    drawRemove();
  });
  for (const button of document.querySelectorAll("nav.menu button")) {
    button.addEventListener("click", () => show(button.dataset.screen));
  }
  $("select-edit").addEventListener("click", openEdit);
  $("select-new").addEventListener("click", () => show("screen-new"));
  $("select-remove").addEventListener("click", openRemove);
  $("remove-submit").addEventListener("click", remove);
  $("remove-cancel").addEventListener("click", () => show("screen-select"));
  $("edit-form").addEventListener("submit", saveEdit);
  $("edit-clear").addEventListener("click", () => {
    for (const radio of document.querySelectorAll('input[name="certificate"]')) radio.checked = false;
    $("edit-password").value = "";
  });
  $("new-form").addEventListener("submit", saveNew);
  $("unlock-submit").addEventListener("click", unlock);
  $("history-form").addEventListener("submit", searchHistory);
  $("done-top").addEventListener("click", () => show("screen-select"));
  show("screen-select");
  try {
    await loadAccounts();
  } catch (error) {
    if (error.status === 403) $("no-certificate").hidden = false;
    fail(error);
  }
  document.body.dataset.ready = "true";
}

init();
