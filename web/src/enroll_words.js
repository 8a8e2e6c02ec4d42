// The words of /enroll, in the notice's order: 本人認証 → 取得開始 → 完了.

export const WORDS = {
  ja: {
    title: "電子証明書取得",
    authHeading: "電子証明書取得",
    authText:
      "電子証明書取得に必要な本人認証を行います。お客様IDとログインパスワードを入力し「取得」ボタンを押してください。",
    customerId: "お客様ID:",
    loginPassword: "ログインパスワード:",
    get: "取得",
    startHeading: "電子証明書取得開始",
    startText: "電子証明書の取得を開始します。「取得」ボタンを押してください。",
    startNote: "※電子証明書の取得はインターネットバンキングをご利用になるパソコンにて行ってください。",
    fileText:
      "電子証明書と秘密鍵はこのパソコンの中で作られ、パスワード付きのファイル（PKCS#12）として保存されます。ファイルのパスワードを決めて入力してください（8文字以上）。秘密鍵がこのパソコンから送信されることはありません。",
    filePassword: "ファイルのパスワード:",
    filePasswordAgain: "ファイルのパスワード（確認）:",
    back: "戻る",
    working: "鍵を作成し、電子証明書を取得しています…",
    filePasswordShort: "ファイルのパスワードは8文字以上にしてください。",
    filePasswordDiffers: "確認用のファイルのパスワードが一致しません。",
    doneHeading: "電子証明書の取得が完了しました",
    doneText:
      "電子証明書と秘密鍵のファイルを保存しました。下の手順でこのパソコンに取り込んでください。取り込むときは、ファイルのパスワードを入力します。",
    download: "電子証明書ファイルをもう一度保存する",
    certInfo: "電子証明書情報",
    serial: "シリアル番号",
    doneNote1: "※ この電子証明書を取り込んだパソコン以外ではログインできません。",
    importHeading: "電子証明書の取り込み方法",
    importWindows:
      "Windows（Edge・Chrome）: 保存したファイルをダブルクリックし、「証明書のインポート ウィザード」で「現在のユーザー」を選び、ファイルのパスワードを入力して「次へ」を押し、完了します。",
    importMac:
      "macOS（Safari・Chrome）: 保存したファイルをダブルクリックすると「キーチェーンアクセス」が開きます。キーチェーン「ログイン」を選び、ファイルのパスワードを入力します。",
    importFirefox:
      "Firefox: 設定 → プライバシーとセキュリティ → 証明書 →「証明書を表示」→「あなたの証明書」→「インポート」で保存したファイルを選び、ファイルのパスワードを入力します。",
  },
  en: {
    title: "Certificate enrollment",
    authHeading: "Get your certificate",
    authText:
      "First we check who you are. Type your customer ID and login password, then press “Get”.",
    customerId: "Customer ID:",
    loginPassword: "Login password:",
    get: "Get",
    startHeading: "Start getting your certificate",
    startText: "Getting your certificate starts now. Press “Get”.",
    startNote: "Do this on the PC you will use for internet banking.",
    fileText:
      "Your certificate and its private key are made on this PC and saved as a password-protected file (PKCS#12). Choose the file's password (at least 8 characters). The private key never leaves this PC.",
    filePassword: "File password:",
    filePasswordAgain: "File password (again):",
    back: "Back",
    working: "Making the key and getting the certificate…",
    filePasswordShort: "The file password must have at least 8 characters.",
    filePasswordDiffers: "The two file passwords differ.",
    doneHeading: "Your certificate is ready",
    doneText:
      "The file with your certificate and private key was saved. Import it into this PC as below; the import asks for the file password.",
    download: "Save the certificate file again",
    certInfo: "Certificate information",
    serial: "Serial number",
    doneNote1: "You can log in only from a PC into which this certificate was imported.",
    importHeading: "Importing the certificate",
    importWindows:
      "Windows (Edge, Chrome): double-click the saved file; in the Certificate Import Wizard choose “Current User”, type the file password, press Next and Finish.",
    importMac:
      "macOS (Safari, Chrome): double-click the saved file; Keychain Access opens. Choose the “login” keychain and type the file password.",
    importFirefox:
      "Firefox: Settings → Privacy & Security → Certificates → View Certificates → Your Certificates → Import, choose the saved file and type the file password.",
  },
};
