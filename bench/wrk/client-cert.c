/*
 * wrk has no option to present a TLS client certificate, and an mTLS network refuses a mint without one. Loaded with
 * LD_PRELOAD into wrk only (bench/run.sh builds it, the harness sets it for the mTLS workload alone), this gives each
 * SSL_CTX that wrk creates the certificate and key named by GATEHOUSE_WRK_CLIENT_CERT and GATEHOUSE_WRK_CLIENT_KEY
 * (PEM files). Nothing else of wrk changes: its connections stay open, so each TLS handshake is paid once per
 * connection, as the workload's name says. No OpenSSL headers are needed: the few declarations are here.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
int SSL_CTX_use_certificate_chain_file(SSL_CTX *ctx, const char *file);
int SSL_CTX_use_PrivateKey_file(SSL_CTX *ctx, const char *file, int type);
int SSL_CTX_check_private_key(const SSL_CTX *ctx);
#define PEM_FILETYPE 1

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
    static SSL_CTX *(*real_new)(const SSL_METHOD *);
    if (real_new == NULL)
        real_new = (SSL_CTX * (*)(const SSL_METHOD *)) dlsym(RTLD_NEXT, "SSL_CTX_new");
    SSL_CTX *ctx = real_new(method);
    const char *certificate = getenv("GATEHOUSE_WRK_CLIENT_CERT");
    const char *key = getenv("GATEHOUSE_WRK_CLIENT_KEY");
    if (ctx == NULL || certificate == NULL || key == NULL)
        return ctx;
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, PEM_FILETYPE) != 1
        || SSL_CTX_check_private_key(ctx) != 1)
    {
        fprintf(stderr, "client-cert.so: cannot use %s and %s as wrk's client certificate\n", certificate, key);
        exit(2);
    }
    return ctx;
}
