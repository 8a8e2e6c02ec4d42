// /enroll: the notice's 電子証明書取得. The key pair is made by WebCrypto in this page, the
// PKCS#10 request is signed here and sent to EST simpleenroll with the typed ID and password;
// the answer and the key become a password-protected PKCS#12 file built here. The private
// key never leaves the page.

import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs it before it loads
import * as x509 from "@peculiar/x509";
import { setupLanguage } from "./i18n.js";
import { sentenceOf, showRefusal } from "./refusals.js";
import { buildPkcs12 } from "./pkcs12.js";
import { WORDS } from "./enroll_words.js";

x509.cryptoProvider.set(crypto);

const KEY_ALGORITHM = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
const MIN_FILE_PASSWORD = 8;

const $ = (id) => document.getElementById(id);
let words;
let lastDone = null;

function show(screen) {
  for (const el of document.querySelectorAll(".screen")) el.hidden = el.id !== screen;
}

function setBusy(busy) {
  $("enroll-submit").disabled = busy;
  $("enroll-progress").hidden = !busy;
}

/** The subject of `cert` as the notice lists it: one "Type = value" line per attribute. */
function subjectLines(cert) {
  const names = { C: "Country", O: "Organization", OU: "Organizational Unit", CN: "Common Name" };
  const lines = [];
  for (const rdn of cert.subjectName.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) {
      for (const value of values) lines.push(`${names[type] || type} = ${value}`);
    }
  }
  return lines;
}

function drawDone() {
  if (!lastDone) return;
  const { cert } = lastDone;
  const list = $("done-subject");
  list.replaceChildren(
    ...subjectLines(cert).map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    }),
  );
  $("done-serial").textContent = cert.serialNumber.toLowerCase();
}

async function enroll(id, password, filePassword) {
  const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [id] }],
    keys,
    signingAlgorithm: KEY_ALGORITHM,
  });
  let response;
  try {
    response = await fetch("/.well-known/est/simpleenroll", {
      method: "POST",
      headers: {
        "Content-Type": "application/pkcs10",
        Accept: "application/pem-certificate-chain",
        Authorization: "Basic " + btoa(String.fromCharCode(...new TextEncoder().encode(`${id}:${password}`))),
      },
      body: csr.toString("base64"),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    return { status: 0, sentence: "estca could not be reached; check the network" };
  }
  if (!response.ok) return { status: response.status, sentence: await sentenceOf(response) };
  const chain = x509.PemConverter.decode(await response.text());
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  const p12 = await buildPkcs12(pkcs8, chain, filePassword, id);
  return { cert: new x509.X509Certificate(chain[0]), p12 };
}

function offer(id, p12) {
  const link = $("done-download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([p12], { type: "application/x-pkcs12" }));
  link.download = `${id}.p12`;
  link.click(); // saved at once, as the notice's 取得 installs at once; the link stays to save again
}

function init() {
  words = setupLanguage(WORDS, () => drawDone());
  show("screen-auth");
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("start-error").hidden = true;
    show("screen-start");
    $("file-password").focus();
  });
  $("start-back").addEventListener("click", () => show("screen-auth"));
  $("start-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("start-error");
    box.hidden = true;
    const filePassword = $("file-password").value;
    if (filePassword.length < MIN_FILE_PASSWORD) {
      box.replaceChildren(Object.assign(document.createElement("p"), { textContent: words().filePasswordShort }));
      box.hidden = false;
      return;
    }
    if (filePassword !== $("file-password-again").value) {
      box.replaceChildren(Object.assign(document.createElement("p"), { textContent: words().filePasswordDiffers }));
      box.hidden = false;
      return;
    }
    const id = $("auth-id").value.trim();
    setBusy(true);
    try {
      const result = await enroll(id, $("auth-password").value, filePassword);
      if (result.p12) {
        $("auth-password").value = "";
        $("file-password").value = "";
        $("file-password-again").value = "";
        lastDone = result;
        offer(id, result.p12);
        drawDone();
        show("screen-done");
      } else {
        showRefusal(box, result.status, result.sentence);
      }
    } finally {
      setBusy(false);
    }
  });
}

init();
