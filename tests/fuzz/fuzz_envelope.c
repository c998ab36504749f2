/* SPDX-License-Identifier: MIT
 * fuzz_envelope.c - libFuzzer target for the encrypted-field opener (srup_envelope_open).
 * The input is a raw blob (spec §4). A fixed private key is loaded once: the pySRUP test key
 * embedded below (test data only, also in tests/vectors/keys), or the PEM file named by the
 * environment variable SRUP_FUZZ_KEY. Property: open either succeeds with a plaintext whose
 * length is the blob's own P field and that fits in the blob, or fails with DECRYPT leaving no
 * output and a terminated diagnostic. Anything else aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <srup/srup.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* clang-format off */
static const char embedded_key[] =
		"-----BEGIN RSA PRIVATE KEY-----\n"
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDV7vjpCaQMagD2\n"
		"y72JvDiUt/o75Ryzt8fRx4efEyCs5Q5ylSc1ZFcKQivKXxuIfc1WTiRp5onpdmVb\n"
		"Kn9OOeJwHt2tc/NW3QbWLpnOpRle4fwUQmVcixX6bZFPDfpTWlqnlT813UOpsbIm\n"
		"eOhnbkVJZmYQC0tUDvZbZeoOORqB8QmSkjJOEdqiAbvJxCNI8iKjxGzbmJxhekNv\n"
		"t6ddN7BUCRxsc3f1V5p7O1HikQVX4Ae1pjXksGfqcWFSp3NKv+GSHqquTT8lcrVd\n"
		"6KZU1wo44N+vIT655vodZ9eNEcGFbnt2DWkEZcQ+XUINdgp0/jHu+rqax2CzX889\n"
		"Cjb+La61AgMBAAECggEBAIrKzSWzIYEETLfQmpj/Sd4CNhAhpitacgLBZlVnvW0t\n"
		"9d+UsKlM/cMkBvD2HxDAPTVe4PTrolGahEtPGOSRXTzMaZkcfqS+JK9T8GlGZ11N\n"
		"U5N5N/WALrQX3YviT6NAHUxX4Xh6omk3ZZLcIjroKX9jNZf3G9nfEylcxyqPFYly\n"
		"vag3zphRHPFB4oRZAxqrpySJmaWX5Osb+yE6h+R7Ro3NsTfZczmc7zk32deKe7eF\n"
		"Xnj8iZ9gWm58X8feUeHwcTznDN/FuZIGSq7Teim0ylfSYOvM16weiGebbcbvbcgf\n"
		"UoSbqYPkSChhLlws+6ukKDl/CKth2KuUSZq0rXAO6gkCgYEA8b0vkMZAUE1n0Y4E\n"
		"ZB8Vvl+ZOrvko1jhROQSuE0OyeOTR+7nWbDHhWc3hkUYq8Y47YIwLYWY+tcNQge1\n"
		"J/PrQ9rSnG9IZgHEIBLMzjYAhfnHLzcgi059zEWmycHBhrhcbze+sfIGyaCU1uUM\n"
		"xL8yRpt2U4vSr6oDVoMI+FOXJ5cCgYEA4o3b+RATNalGekQPkGsl2UbfquKtWLyu\n"
		"AY+MQ+FuEBwqQraWCMplbLf4vxtwaBqD3hwIiyXLx5cQqGaqnCnKqY6kRsEOcxjq\n"
		"0yiC4Z1L/2Vack6drtmRyAoK1rM1zilE5axk3AsTJoRwRFm6HGPyyp9TZyDPmhy0\n"
		"9fgRQn3EBZMCgYA0IIuFOHrd1hMxCOLBhEJ4Dr1IAQRIhP3ukQ/IVjV+K2iy9j1F\n"
		"Be3AQoWimnu7br8P2Cbzaf+W95CQUIEr4Fk3BJStzwFZnb/g+qzXOqXaPgZJlCWc\n"
		"ZIyT4+EXWISWvGKSSP8B+CKmj84ImNOsCV6aAyP82AXSg2K84PyqL7xEeQKBgBi1\n"
		"uERWCIJV0CYNvlTWGu6z2DlfN+Dx01jAO2A7+jEvoTxdhce3q5BMEIlniL8SBUf4\n"
		"bsYefTdrtplneTxHIp+Tuz8sV1MeaJ5XUM8ixOM6Pr8w6+niORBEaCI6saemwKj8\n"
		"QJPvcUtGLqiF0NK/4/9NmV8qKPp6HxKk190UsoiZAoGASToeRT/YjRL2vAGQEU3j\n"
		"7NE2y8P9r++OHhiZtoLEKxZ2WdlUGsWvMgeBnBTYL0W3WRUuThfQGkECVtlhnZ4x\n"
		"h80hagxVYSJ5u3zPpLUSsRKEId4uRT44N3QAIHe2VRYafrPIK24RmFu3bQikYkR1\n"
		"U40unkjk0wnzqnWzubjP3+o=\n"
		"-----END RSA PRIVATE KEY-----\n";
/* clang-format on */

static struct srup_key *fuzz_key;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_envelope: property violated: %s\n", what);
	abort();
}

/* Loaded on first use and kept for the life of the process (never freed). */
static const struct srup_key *key_get(void)
{
	if (fuzz_key != NULL) {
		return fuzz_key;
	}
	struct srup_diag diag;
	memset(&diag, 0, sizeof diag);
	const char *path = getenv("SRUP_FUZZ_KEY");
	enum srup_err rc;
	if (path != NULL && path[0] != '\0') {
		rc = srup_key_load_file(path, SRUP_KEY_PRIVATE, &fuzz_key, &diag);
	} else {
		rc = srup_key_load_pem(embedded_key, sizeof embedded_key - 1, SRUP_KEY_PRIVATE, &fuzz_key,
		                       &diag);
	}
	if (rc != SRUP_OK) {
		fprintf(stderr, "fuzz_envelope: cannot load the key: %s\n", diag.detail);
		abort();
	}
	return fuzz_key;
}

static uint32_t u32le_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct srup_key *key = key_get();
	size_t k = srup_key_size(key);
	uint8_t *pt = (uint8_t *)&pt; /* must be overwritten */
	size_t pt_len = (size_t)-1;
	struct srup_diag diag;
	memset(&diag, 0xA5, sizeof diag);

	enum srup_err rc = srup_envelope_open(key, data, size, &pt, &pt_len, &diag);
	if (rc == SRUP_OK) {
		if (size < 28 + k || u32le_at(data) != k) {
			fail("opened a blob whose header cannot hold the key size");
		}
		size_t c = u32le_at(data + 20 + k);
		size_t p = u32le_at(data + 24 + k);
		if (c == 0 || c % 16 != 0 || 28 + k + c != size) {
			fail("opened a blob whose ciphertext length is inconsistent");
		}
		if (pt_len != p || pt_len >= c || pt_len + 16 < c) {
			fail("plaintext length differs from the blob's P or breaks C - 16 <= P < C");
		}
		if (pt == NULL) {
			fail("success without a plaintext buffer");
		}
		/* Touch every byte so ASan checks the buffer really is pt_len long. */
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < pt_len; i++) {
			sink ^= pt[i];
		}
		(void)sink;
		free(pt);
		return 0;
	}
	if (rc != SRUP_ERR_DECRYPT) {
		fprintf(stderr, "fuzz_envelope: unexpected %s\n", srup_err_name(rc));
		fail("a blob was refused with something other than DECRYPT");
	}
	if (pt != NULL || pt_len != 0) {
		fail("a refused blob left output behind");
	}
	if (memchr(diag.detail, '\0', sizeof diag.detail) == NULL || diag.detail[0] == '\0') {
		fail("refusal without a terminated diagnostic");
	}
	if (diag.offset > size) {
		fail("diag.offset is past the input");
	}
	return 0;
}
