// Drives Debian's chromium (headless, through playwright-core) over estca's browser screens
// for tests/web.rs, which starts the daemon, prepares the IDs and checks what this script
// saved. Input: the JSON file named by argv[2]. Output: PKCS#12 files, screenshots and
// results.json in its `out` directory. Every step waits for what the page shows; a missing
// element fails the run with the step's name.

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { base, out, shots, password, filePassword, chromiumPath } = input;
mkdirSync(out, { recursive: true });
mkdirSync(shots, { recursive: true });
const results = {};

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: FLAGS,
  headless: true, // each run starts from a fresh profile (--user-data-dir) that playwright-core makes and removes
});

async function context(master) {
  const options = {
    ignoreHTTPSErrors: true, // the test CA is not in the system store; the test checks its chain itself
    locale: "ja-JP",
    viewport: { width: 860, height: 620 },
    acceptDownloads: true,
  };
  if (master) {
    options.clientCertificates = [{ origin: base, certPath: master.cert, keyPath: master.key }];
  }
  const made = await browser.newContext(options);
  // The pages' own errors, for the failure message of tests/web.rs.
  made.on("weberror", (error) => console.error(`page error: ${error.error().message}`));
  made.on("console", (message) => {
    if (message.type() === "error") console.error(`page console: ${message.text()}`);
  });
  return made;
}

/** Screenshots the page in the language shown, then in the other (and back). */
async function shot(page, name) {
  const first = await page.evaluate(() => document.documentElement.lang);
  await page.screenshot({ path: join(shots, `${name}-${first}.png`) });
  await page.click("#lang-switch");
  const second = await page.evaluate(() => document.documentElement.lang);
  await page.screenshot({ path: join(shots, `${name}-${second}.png`) });
  await page.click("#lang-switch");
}

async function step(name, body) {
  try {
    return await body();
  } catch (error) {
    throw new Error(`step "${name}": ${error.message}`);
  }
}

/** Enrolls `id` on /enroll; saves the PKCS#12 as `file` or returns the refusal's text. */
async function enroll(page, id, file, shotPrefix, typed = password) {
  await page.goto(`${base}/enroll`);
  await page.fill("#auth-id", id);
  await page.fill("#auth-password", typed);
  if (shotPrefix) await shot(page, `${shotPrefix}1-auth`);
  await page.click("#auth-submit");
  await page.fill("#file-password", filePassword);
  await page.fill("#file-password-again", filePassword);
  if (shotPrefix) await shot(page, `${shotPrefix}2-start`);
  const download = page.waitForEvent("download", { timeout: 60000 }).catch(() => null);
  await page.click("#enroll-submit");
  const outcome = await Promise.race([
    page.waitForSelector("#screen-done:not([hidden])", { timeout: 60000 }).then(() => "done"),
    page.waitForSelector("#start-error:not([hidden])", { timeout: 60000 }).then(() => "refused"),
  ]);
  if (outcome === "refused") {
    return {
      refused: true,
      ja: await page.textContent("#start-error .refusal-ja"),
      en: await page.textContent("#start-error .refusal-en"),
    };
  }
  const saved = await download;
  if (!saved) throw new Error("no download");
  await saved.saveAs(join(out, file));
  if (shotPrefix) await shot(page, `${shotPrefix}3-done`);
  return { refused: false, serial: await page.textContent("#done-serial") };
}

async function visibleIds(page) {
  return page.$$eval("#accounts-body tr td:nth-child(2)", (cells) => cells.map((c) => c.textContent));
}

async function openConsole(page) {
  await page.goto(`${base}/console`);
  await page.waitForSelector("body[data-ready=true]");
}

async function edit(page, id, action) {
  await page.click("nav.menu button[data-screen=screen-select]");
  await page.check(`#accounts-body input[value="${id}"]`);
  await page.click("#select-edit");
  await page.check(`input[name=certificate][value=${action}]`);
  return page;
}

try {
  const user = input.user;
  const enrollPage = await (await context(null)).newPage();
  results.first = await step("first enrollment", () => enroll(enrollPage, user, "first.p12", "enroll-"));
  results.again = await step("enrollment refused with 409", () => enroll(enrollPage, user, "never.p12", null));
  await step("refusal screenshots", () => shot(enrollPage, "enroll-4-refused"));

  const masterPage = await (await context(input.master)).newPage();
  await step("console list", () => openConsole(masterPage));
  results.masterSees = await visibleIds(masterPage);
  await shot(masterPage, "console-1-select");
  await step("reissue", async () => {
    await edit(masterPage, user, "reissue");
    await shot(masterPage, "console-2-edit");
    await masterPage.click("#edit-submit");
    await masterPage.waitForSelector("#screen-done:not([hidden])");
    await shot(masterPage, "console-3-done");
    results.reissueDone = await masterPage.textContent("#done-id");
  });
  results.second = await step("enrollment after reissue", () => enroll(enrollPage, user, "second.p12", null));
  await step("revoke", async () => {
    await edit(masterPage, user, "revoke");
    await masterPage.click("#edit-submit");
    await masterPage.waitForSelector("#screen-done:not([hidden])");
  });
  results.afterRevoke = await step("enrollment refused after revoke", () =>
    enroll(enrollPage, user, "never.p12", null),
  );
  results.whileLocked = await step("enrollment refused while locked", () =>
    enroll(enrollPage, input.locked, "never.p12", null),
  );
  await step("unlock", async () => {
    await masterPage.click("nav.menu button[data-screen=screen-unlock]");
    await masterPage.check(`#locked-body input[value="${input.locked}"]`);
    await shot(masterPage, "console-4-unlock");
    await masterPage.click("#unlock-submit");
    await masterPage.waitForSelector("#screen-done:not([hidden])");
    results.unlockDone = await masterPage.textContent("#done-id");
  });
  await step("history", async () => {
    await masterPage.click("nav.menu button[data-screen=screen-history]");
    await masterPage.selectOption("#history-account", user);
    await masterPage.click("#history-submit");
    await masterPage.waitForSelector("#history-body tr");
    results.history = await masterPage.$$eval("#history-body tr td:nth-child(3)", (c) => c.map((x) => x.textContent));
    await shot(masterPage, "console-5-history");
  });
  await step("new ID", async () => {
    await masterPage.click("nav.menu button[data-screen=screen-select]");
    await masterPage.click("#select-new");
    await masterPage.fill("#new-id", input.newId);
    await masterPage.fill("#new-name", "New Staff");
    await masterPage.fill("#new-password", password);
    await shot(masterPage, "console-6-new");
    await masterPage.click("#new-submit");
    await masterPage.waitForSelector("#screen-done:not([hidden])");
    results.created = await masterPage.textContent("#done-id");
  });
  results.wrongPassword = await step("enrollment refused with a wrong password", () =>
    enroll(enrollPage, input.newId, "never.p12", null, `${password} wrong`),
  );

  await step("remove", async () => {
    await masterPage.click("nav.menu button[data-screen=screen-select]");
    await masterPage.check(`#accounts-body input[value="${input.removed}"]`);
    await masterPage.click("#select-remove");
    await masterPage.waitForSelector("#screen-remove:not([hidden])");
    const confirmation = () => masterPage.$$eval("#screen-remove :is(h1, p, td)", (els) => els.map((e) => e.textContent).join(" "));
    results.removeConfirmJa = await confirmation();
    await shot(masterPage, "console-8-remove");
    await masterPage.click("#lang-switch");
    results.removeConfirmEn = await confirmation();
    await masterPage.click("#lang-switch");
    await masterPage.click("#remove-submit");
    await masterPage.waitForSelector("#screen-done:not([hidden])");
    results.removeDone = await masterPage.textContent("#done-text");
    results.afterRemove = await visibleIds(masterPage);
  });

  const otherPage = await (await context(input.otherMaster)).newPage();
  await step("other contract's console", () => openConsole(otherPage));
  results.otherSees = await visibleIds(otherPage);

  // The operator: the same console through a local port forwarded to the admin socket (as
  // `ssh -L` does), where the API answers the operator for every contract.
  const operator = await (await context(null)).newPage();
  await step("operator's console", () => operator.goto(`${input.operatorBase}/console`));
  await operator.waitForSelector("body[data-ready=true]");
  results.operatorSees = await visibleIds(operator);
  await shot(operator, "console-7-operator");

  const anonymous = await (await context(null)).newPage();
  await anonymous.goto(`${base}/console`);
  await anonymous.waitForSelector("body[data-ready=true]");
  results.anonymousSees = await visibleIds(anonymous);
  results.anonymousNotice = await anonymous.isVisible("#no-certificate");
} finally {
  await browser.close();
  writeFileSync(join(out, "results.json"), JSON.stringify(results, null, 2));
}
