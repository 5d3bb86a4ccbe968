# filled by the keystore issue
