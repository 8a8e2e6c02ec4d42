// Bouncy Castle's EST client (org.bouncycastle.est), stock, against estca: used by
// tests/bouncy_castle.rs. Arguments: HOST:PORT, the root CA's PEM file, the ID, the password.
// Fetches cacerts, then enrolls a new P-256 key with HTTP Basic through BC's own HttpAuth
// (which first sends the request without credentials and answers the 401 challenge).
// Prints one line per step: "CACERTS <n>", then "ENROLLED <subject>" or
// "REFUSED <status> <message>"; exits 0 either way (the Rust test judges the lines).

import java.io.FileInputStream;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.Collections;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.est.CACertsResponse;
import org.bouncycastle.est.ESTException;
import org.bouncycastle.est.ESTService;
import org.bouncycastle.est.EnrollmentResponse;
import org.bouncycastle.est.jcajce.JcaHttpAuthBuilder;
import org.bouncycastle.est.jcajce.JcaJceUtils;
import org.bouncycastle.est.jcajce.JsseESTServiceBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

public class EstEnroll {
    public static void main(String[] args) throws Exception {
        // BC's trust manager checks the chain with the "BC" provider.
        Security.addProvider(new BouncyCastleProvider());
        String server = args[0];
        X509Certificate root;
        try (FileInputStream in = new FileInputStream(args[1])) {
            root = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        ESTService est = new JsseESTServiceBuilder(server,
                JcaJceUtils.getCertPathTrustManager(
                        Collections.singleton(new TrustAnchor(root, null)), null))
                .build();

        CACertsResponse cacerts = est.getCACerts();
        System.out.println("CACERTS " + cacerts.getCertificateStore().getMatches(null).size());

        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair key = generator.generateKeyPair();
        PKCS10CertificationRequest csr = new JcaPKCS10CertificationRequestBuilder(
                new X500Name("CN=bouncy castle"), key.getPublic())
                .build(new JcaContentSignerBuilder("SHA256withECDSA").build(key.getPrivate()));
        try {
            EnrollmentResponse response = est.simpleEnroll(false, csr,
                    new JcaHttpAuthBuilder(args[2], args[3].toCharArray())
                            .setNonceGenerator(new SecureRandom())
                            .build());
            for (Object holder : response.getStore().getMatches(null)) {
                System.out.println("ENROLLED " + ((X509CertificateHolder) holder).getSubject());
            }
        } catch (ESTException e) {
            String body = "";
            if (e.getBody() != null) {
                body = new String(e.getBody().readAllBytes(), "UTF-8").trim();
            }
            System.out.println("REFUSED " + e.getStatusCode() + " " + e.getMessage() + " | " + body);
        }
    }
}
