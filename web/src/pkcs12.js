// The PKCS#12 file (RFC 7292) the enrollment page offers: the private key in a
// PKCS8ShroudedKeyBag and the certificate chain in password-encrypted SafeContents, with a
// password MAC, all built by pkijs from the typed password (PBES2: PBKDF2 with HMAC-SHA-256
// and AES-256-CBC; MAC HMAC-SHA-256). Windows 10+, macOS and Firefox import it.

import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

const KEY_BAG = "1.2.840.113549.1.12.10.1.2"; // pkcs8ShroudedKeyBag
const CERT_BAG = "1.2.840.113549.1.12.10.1.3"; // certBag
const X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"; // x509Certificate
const FRIENDLY_NAME = "1.2.840.113549.1.9.20";
const LOCAL_KEY_ID = "1.2.840.113549.1.9.21";
const ITERATIONS = 100000;

function bagAttributes(friendlyName, localKeyId) {
  return [
    new pkijs.Attribute({
      type: FRIENDLY_NAME,
      values: [new asn1js.BmpString({ value: friendlyName })],
    }),
    new pkijs.Attribute({
      type: LOCAL_KEY_ID,
      values: [new asn1js.OctetString({ valueHex: localKeyId })],
    }),
  ];
}

/**
 * The DER of a PKCS#12 holding `pkcs8` (the private key, PKCS#8 DER) and `chainDer` (the
 * certificate first, then its issuers), protected by `password`, named `friendlyName`.
 */
export async function buildPkcs12(pkcs8, chainDer, password, friendlyName) {
  const passwordBytes = new TextEncoder().encode(password).buffer;
  const localKeyId = await crypto.subtle.digest("SHA-256", chainDer[0]);
  const keyBag = new pkijs.SafeBag({
    bagId: KEY_BAG,
    bagValue: new pkijs.PKCS8ShroudedKeyBag({
      parsedValue: pkijs.PrivateKeyInfo.fromBER(pkcs8),
    }),
    bagAttributes: bagAttributes(friendlyName, localKeyId),
  });
  const certBags = chainDer.map(
    (der, i) =>
      new pkijs.SafeBag({
        bagId: CERT_BAG,
        bagValue: new pkijs.CertBag({
          certId: X509_CERTIFICATE,
          parsedValue: pkijs.Certificate.fromBER(der),
        }),
        ...(i === 0 ? { bagAttributes: bagAttributes(friendlyName, localKeyId) } : {}),
      }),
  );
  const encryption = {
    password: passwordBytes,
    contentEncryptionAlgorithm: { name: "AES-CBC", length: 256 },
    hmacHashAlgorithm: "SHA-256",
    iterationCount: ITERATIONS,
  };
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0, // password-based integrity (MAC)
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [keyBag] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  await keyBag.bagValue.makeInternalValues(encryption);
  await pfx.parsedValue.authenticatedSafe.makeInternalValues({ safeContents: [{}, encryption] });
  await pfx.makeInternalValues({
    password: passwordBytes,
    iterations: ITERATIONS,
    pbkdf2HashAlgorithm: "SHA-256",
    hmacHashAlgorithm: "SHA-256",
  });
  return pfx.toSchema().toBER(false);
}
