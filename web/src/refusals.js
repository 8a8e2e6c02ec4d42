// estca's refusals in both languages: the English sentence is the one estca answered (shown
// as received); the Japanese one is chosen by the status and, where one status has several
// causes, by the words of estca's sentence. No rule is decided here: the daemon decided.

const JA = {
  conflict:
    "このIDには有効な電子証明書がすでにあります。管理者に「再発行する」を選択してもらってから、もう一度取得してください。",
  revoked:
    "このIDの電子証明書は管理者により失効されています。管理者が「再発行する」を選択するまで取得できません。",
  locked:
    "このIDはパスワードの誤りが続いたためロックされています。管理者にIDロック解除を依頼してください。",
  unauthenticated:
    "本人認証に失敗しました。お客様IDとログインパスワードを確認してください（誤りが続くとIDはロックされます。管理者にお問い合わせください）。",
  forbidden: "この操作は許可されていません。",
  throttled:
    "このパソコンからの認証失敗が続いたため、しばらく受け付けを停止しています。時間をおいてもう一度お試しください。",
  busy: "ただいま混み合っています。時間をおいてもう一度お試しください。",
  badRequest: "要求を受け付けられませんでした。",
  notFound: "見つかりません。",
  other: "処理できませんでした。",
  network: "サーバーに接続できませんでした。ネットワークを確認してください。",
};

/** The Japanese sentence for estca's refusal `status` with English `sentence`. */
export function japaneseRefusal(status, sentence) {
  const s = sentence.toLowerCase();
  switch (status) {
    case 0:
      return JA.network;
    case 401:
      return JA.unauthenticated;
    case 403:
      if (s.includes("locked")) return JA.locked;
      if (s.includes("revoked")) return JA.revoked;
      return JA.forbidden;
    case 409:
      return JA.conflict;
    case 429:
      return JA.throttled;
    case 503:
      return JA.busy;
    case 400:
      return JA.badRequest;
    case 404:
      return JA.notFound;
    default:
      return JA.other;
  }
}

/** The English sentence estca gave (text/plain or the API's JSON `detail`). */
export async function sentenceOf(response) {
  const text = (await response.text()).trim();
  try {
    const body = JSON.parse(text);
    if (body && typeof body.detail === "string") return body.detail;
  } catch {
    // not JSON: EST answers text/plain
  }
  return text;
}

/** Fills `box` with both sentences of a refusal and shows it. */
export function showRefusal(box, status, sentence) {
  box.replaceChildren();
  const ja = document.createElement("p");
  ja.lang = "ja";
  ja.className = "refusal-ja";
  ja.textContent = japaneseRefusal(status, sentence);
  const en = document.createElement("p");
  en.lang = "en";
  en.className = "refusal-en";
  en.textContent = sentence;
  box.append(ja, en);
  box.hidden = false;
}
