/*
 * store/crypto.c - tokens at rest.  A token (an integration id) is a bearer
 * secret: the store never keys anything by it.  Every key holds its keyed
 * hash instead, HMAC-SHA256 under a per-store key (token-hash.key, created
 * at the first open), as 64 hex digits; the token itself, which queued work
 * needs to call Botmatic, is kept once, sealed with AES-256-GCM (SPEC §12's
 * scheme) under the key of BM_SECRET_KEY_FILE, or under token-seal.key the
 * store creates when none is given.  So the database files, their logs and
 * their backups hold no token, and a lookup compares hashes, not secrets.
 *
 * Sealed form: version (1) | nonce (12) | ciphertext | tag (16), with the
 * token's hash as additional data: a sealed token moved under another key
 * does not open.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "store/store_int.h"

#define SEAL_VERSION 1
#define SEAL_NONCE 12
#define SEAL_TAG 16
#define SEAL_OVERHEAD (1 + SEAL_NONCE + SEAL_TAG)
_Static_assert(SEAL_OVERHEAD == STORE__SEAL_OVERHEAD,
    "store_int.h's copy of the seal overhead");

static int
crypto_random(unsigned char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = getrandom(buf + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

static int
crypto_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reads a key file: 32 bytes, or 64 hex digits and an optional newline.
 * Refuses a file group or others may read or write.  Returns 0, or -1 with
 * err filled (never with the key's bytes).
 */
static int
crypto_read_key(const char *path, unsigned char key[STORE__KEY_BYTES],
    char *err, size_t errlen)
{
	unsigned char buf[STORE__KEY_BYTES * 2 + 2];
	struct stat st;
	ssize_t n;
	size_t i, len = 0;
	int fd, hi, lo, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 0077) {
		snprintf(err, errlen, "%s: group or others may access it (mode "
		    "%04o): a key file must be 0600 or 0400", path,
		    (unsigned)(st.st_mode & 07777));
		goto out;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == STORE__KEY_BYTES) {
		memcpy(key, buf, STORE__KEY_BYTES);
		rc = 0;
		goto out;
	}
	if (len == 2 * STORE__KEY_BYTES + 1 && buf[len - 1] == '\n')
		len--;
	if (len == 2 * STORE__KEY_BYTES) {
		for (i = 0; i < STORE__KEY_BYTES; i++) {
			hi = crypto_hexval(buf[2 * i]);
			lo = crypto_hexval(buf[2 * i + 1]);
			if (hi < 0 || lo < 0)
				break;
			key[i] = (unsigned char)(hi << 4 | lo);
		}
		if (i == STORE__KEY_BYTES) {
			rc = 0;
			goto out;
		}
	}
	snprintf(err, errlen, "%s: expected 32 bytes or 64 hex digits", path);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return rc;
}

/*
 * The key in home/name, created (32 random bytes, mode 0600) when absent.
 * Two processes opening a new store at once agree: the key is written to a
 * private file and linked into place, and whoever links second reads the
 * winner's key.
 */
static int
crypto_store_key(const char *home, const char *name,
    unsigned char key[STORE__KEY_BYTES], char *err, size_t errlen)
{
	char path[4096], tmp[4200];
	unsigned char fresh[STORE__KEY_BYTES];
	int fd = -1, rc = -1;

	snprintf(path, sizeof(path), "%s/%s", home, name);
	if (access(path, F_OK) == 0)
		return crypto_read_key(path, key, err, errlen);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", home, name, (long)getpid());
	if (crypto_random(fresh, sizeof(fresh)) < 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		goto out;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0 ||
	    write(fd, fresh, sizeof(fresh)) != (ssize_t)sizeof(fresh) ||
	    fsync(fd) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (link(tmp, path) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = crypto_read_key(path, key, err, errlen);
out:
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if (fd >= 0) {
		close(fd);
		(void)unlink(tmp);
	}
	return rc;
}

int
store__crypto_init(struct store *s, unsigned keys_set,
    const char *key_file, char *err, size_t errlen)
{
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	int rc = -1;

	if (!(keys_set & STORE__KEYS_HASH) && crypto_store_key(s->home,
	    STORE__HASH_KEY_FILE, s->hkey, err, errlen) < 0)
		return -1;
	if (keys_set & STORE__KEYS_SEAL)
		; /* given by the caller */
	else if (key_file != NULL && key_file[0] != '\0') {
		if (crypto_read_key(key_file, s->ekey, err, errlen) < 0)
			return -1;
	} else if (crypto_store_key(s->home, STORE__SEAL_KEY_FILE, s->ekey,
	    err, errlen) < 0)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (s->hmac = EVP_MAC_CTX_new(mac)) == NULL ||
	    EVP_MAC_init(s->hmac, s->hkey, sizeof(s->hkey), params) != 1 ||
	    (s->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL) {
		snprintf(err, errlen, "%s: OpenSSL has no HMAC-SHA256 or "
		    "AES-256-GCM", s->home);
		goto out;
	}
	rc = 0;
out:
	EVP_MAC_free(mac);
	return rc;
}

int
store__crypto_random(unsigned char *buf, size_t n)
{
	return crypto_random(buf, n);
}

void
store__crypto_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

void
store__crypto_clear(struct store *s)
{
	EVP_MAC_CTX_free(s->hmac);
	EVP_CIPHER_free(s->aes);
	s->hmac = NULL;
	s->aes = NULL;
	OPENSSL_cleanse(s->hkey, sizeof(s->hkey));
	OPENSSL_cleanse(s->ekey, sizeof(s->ekey));
}

int
store__token_key(const struct store *s, const char *token, size_t tlen,
    char out[STORE__HASH_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0, i;

	/* The context keeps its key: init with none restarts it. */
	if (s->hmac == NULL || EVP_MAC_init(s->hmac, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(s->hmac, (const unsigned char *)token, tlen) != 1 ||
	    EVP_MAC_final(s->hmac, mac, &maclen, sizeof(mac)) != 1 ||
	    maclen != STORE__HASH_LEN / 2)
		return ENOMEM;
	for (i = 0; i < maclen; i++) {
		out[2 * i] = digits[mac[i] >> 4];
		out[2 * i + 1] = digits[mac[i] & 15];
	}
	out[STORE__HASH_LEN] = '\0';
	return 0;
}

int
store__seal(const struct store *s, const void *aad, size_t aadlen,
    const void *plain, size_t plen, unsigned char **out, size_t *outlen)
{
	EVP_CIPHER_CTX *c = NULL;
	unsigned char *buf;
	int n, ret = ENOMEM;

	*out = NULL;
	if ((buf = malloc(plen + SEAL_OVERHEAD)) == NULL)
		return ENOMEM;
	buf[0] = SEAL_VERSION;
	if (crypto_random(buf + 1, SEAL_NONCE) < 0) {
		ret = errno;
		goto out;
	}
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(c, s->aes, NULL, s->ekey, buf + 1)
	    != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_EncryptUpdate(c, buf + 1 + SEAL_NONCE, &n, plain, (int)plen)
	    != 1 ||
	    EVP_EncryptFinal_ex(c, buf + 1 + SEAL_NONCE + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG,
	    buf + 1 + SEAL_NONCE + plen) != 1) {
		ret = EINVAL;
		goto out;
	}
	*out = buf;
	*outlen = plen + SEAL_OVERHEAD;
	buf = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(c);
	free(buf);
	return ret;
}

int
store__unseal(const struct store *s, const void *aad, size_t aadlen,
    const unsigned char *in, size_t len, char **plain, size_t *plen)
{
	EVP_CIPHER_CTX *c = NULL;
	size_t tlen;
	char *buf = NULL;
	int n, ret = EINVAL;

	*plain = NULL;
	if (len < SEAL_OVERHEAD || in[0] != SEAL_VERSION)
		return EINVAL;
	tlen = len - SEAL_OVERHEAD;
	if ((buf = malloc(tlen + 1)) == NULL)
		return ENOMEM;
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(c, s->aes, NULL, s->ekey, in + 1)
	    != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_DecryptUpdate(c, (unsigned char *)buf, &n,
	    in + 1 + SEAL_NONCE, (int)tlen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG,
	    (void *)(in + 1 + SEAL_NONCE + tlen)) != 1 ||
	    EVP_DecryptFinal_ex(c, (unsigned char *)buf + n, &n) != 1)
		goto out;
	buf[tlen] = '\0';
	*plain = buf;
	if (plen != NULL)
		*plen = tlen;
	buf = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(c);
	if (buf != NULL) {
		OPENSSL_cleanse(buf, tlen);
		free(buf);
	}
	return ret;
}

/* Seals token (tlen bytes) bound to hash into *out (new), *outlen bytes. */
static int
crypto_seal(const struct store *s, const char *hash, const char *token,
    size_t tlen, unsigned char **out, size_t *outlen)
{
	return store__seal(s, hash, STORE__HASH_LEN, token, tlen, out, outlen);
}

/* Opens a sealed token bound to hash into *token (new, NUL-terminated). */
static int
crypto_open(const struct store *s, const char *hash,
    const unsigned char *in, size_t len, char **token)
{
	return store__unseal(s, hash, STORE__HASH_LEN, in, len, token, NULL);
}

int
store__key_read(const char *path, unsigned char key[STORE__KEY_BYTES],
    char *err, size_t errlen)
{
	return crypto_read_key(path, key, err, errlen);
}

int
store__token_remember(struct store *s, DB_TXN *txn, const char *hash,
    const char *token, size_t tlen)
{
	unsigned char *sealed = NULL;
	size_t slen = 0;
	DBT key, data;
	int ret;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)hash;
	key.size = STORE__HASH_LEN;
	/*
	 * Known already (nearly always): nothing to write.  A shared read
	 * lock, not DB_RMW: every save of every token reads this, and write
	 * locks would queue them all on the same pages.
	 */
	data.flags = DB_DBT_PARTIAL;
	ret = s->tokens->get(s->tokens, txn, &key, &data, 0);
	if (ret != DB_NOTFOUND)
		return ret;
	if ((ret = crypto_seal(s, hash, token, tlen, &sealed, &slen)) != 0)
		return ret;
	memset(&data, 0, sizeof(data));
	data.data = sealed;
	data.size = (u_int32_t)slen;
	ret = s->tokens->put(s->tokens, txn, &key, &data, 0);
	free(sealed);
	return ret;
}

int
store__token_lookup(struct store *s, DB_TXN *txn, const char *hash,
    char **token)
{
	DBT key, data;
	int ret;

	*token = NULL;
	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)hash;
	key.size = STORE__HASH_LEN;
	data.flags = DB_DBT_MALLOC;
	if ((ret = s->tokens->get(s->tokens, txn, &key, &data, 0)) != 0)
		return ret;
	ret = crypto_open(s, hash, data.data, data.size, token);
	free(data.data);
	/* A token that does not open is damage or the wrong key file. */
	return ret == 0 ? 0 : STORE__ESEAL;
}

int
store__token_forget(struct store *s, DB_TXN *txn, const char *hash)
{
	DBT key;
	int ret;

	memset(&key, 0, sizeof(key));
	key.data = (void *)hash;
	key.size = STORE__HASH_LEN;
	ret = s->tokens->del(s->tokens, txn, &key, 0);
	return ret == DB_NOTFOUND ? 0 : ret;
}
