/*
 * A firmware-like MQTT-over-TLS client on mbedTLS, for the test suite.
 *
 * It does what most device firmware does: TLS 1.2 only, blocking sockets, the root CA from a
 * file, an optional client certificate and key, an SNI host name (also the name the server
 * certificate must carry), optionally a chosen cipher suite list and ALPN protocol; then, after
 * the handshake, optionally an MQTT 3.1.1 CONNECT and its CONNACK.
 *
 * It prints exactly one line on stdout, a JSON object, and exits 0 when everything it was asked
 * to do succeeded, 1 when the server refused or the connection failed, 2 on a usage or local
 * setup error. Fields:
 *   stage   "setup" | "connect" | "handshake" | "mqtt"  where it stopped (or "mqtt"/"handshake"
 *           for a success, whichever was the last step asked for)
 *   result  "ok" | "alert" (a fatal alert arrived: see "alert") | "reset" (connection reset by
 *           peer, on a read or a write) | "eof" (the peer closed without an alert) |
 *           "timeout" | "error" (any other mbedTLS error)
 *   error, error_hex, error_text   the mbedTLS error code and mbedtls_strerror's text
 *   alert, alert_name              the TLS alert description (RFC 5246 7.2, RFC 6066 3)
 *   verify                         mbedtls_x509_crt_verify_info text when the server's
 *                                  certificate was rejected
 *   version, suite, alpn           of the session, on a successful handshake
 *   connack                        the CONNACK's bytes in hex
 *
 * Usage: mbedtls_client --port N --ca FILE [--host 127.0.0.1] [--cert FILE --key FILE]
 *          [--sni NAME | --no-sni] [--suite IANA_NAME]... [--alpn PROTO]
 *          [--mqtt-connect CLIENT_ID] [--timeout-ms N]
 * Suite names are IANA's (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) or mbedTLS's (hyphens).
 *
 * Built by tests/test_mbedtls_client.py with gcc against Debian's libmbedtls-dev (2.28).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbedtls/version.h"

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/error.h"
#include "mbedtls/net_sockets.h"
#include "mbedtls/pk.h"
#include "mbedtls/ssl.h"
#include "mbedtls/ssl_ciphersuites.h"
#include "mbedtls/x509_crt.h"

#if MBEDTLS_VERSION_MAJOR >= 3
#define SSL_FIELD(ssl, field) ((ssl).MBEDTLS_PRIVATE(field))
#else
#define SSL_FIELD(ssl, field) ((ssl).field)
#endif

#define MAX_SUITES 64

static void json_string(const char *key, const char *value) {
    printf(",\"%s\":\"", key);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20 || *p >= 0x7f) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

static const char *alert_name(int description) {
    switch (description) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 90: return "user_canceled";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "unknown";
    }
}

/* Print the one result line for an mbedTLS error and return the exit status (1). */
static int report_error(const char *stage, int ret, mbedtls_ssl_context *ssl, uint32_t flags) {
    char text[256];
    const char *result = "error";
    int alert = -1;
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && ssl != NULL &&
        SSL_FIELD(*ssl, in_msgtype) == MBEDTLS_SSL_MSG_ALERT) {
        result = "alert";
        alert = SSL_FIELD(*ssl, in_msg)[1];
    } else if (ret == MBEDTLS_ERR_NET_CONN_RESET) {
        result = "reset";
    } else if (ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        result = "eof";
    } else if (ret == MBEDTLS_ERR_SSL_TIMEOUT) {
        result = "timeout";
    }
    mbedtls_strerror(ret, text, sizeof text);
    printf("{\"stage\":\"%s\",\"result\":\"%s\",\"error\":%d,\"error_hex\":\"-0x%04x\"", stage,
           result, ret, (unsigned)-ret);
    json_string("error_text", text);
    if (alert >= 0) {
        printf(",\"alert\":%d", alert);
        json_string("alert_name", alert_name(alert));
    }
    if (flags != 0) {
        char info[1024];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        json_string("verify", info);
    }
    printf("}\n");
    return 1;
}

static int setup_error(const char *fmt, ...) {
    char message[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    printf("{\"stage\":\"setup\",\"result\":\"error\"");
    json_string("error_text", message);
    printf("}\n");
    return 2;
}

/* An MQTT 3.1.1 CONNECT (3.1.1 section 3.1): clean session, keep-alive 60 s. */
static size_t mqtt_connect_packet(unsigned char *out, size_t size, const char *client_id) {
    size_t id_len = strlen(client_id);
    size_t remaining = 10 + 2 + id_len;
    if (id_len > 0xffff || remaining > 127 || remaining + 2 > size) {
        return 0;
    }
    size_t n = 0;
    out[n++] = 0x10;
    out[n++] = (unsigned char)remaining;
    static const unsigned char header[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60};
    memcpy(out + n, header, sizeof header);
    n += sizeof header;
    out[n++] = (unsigned char)(id_len >> 8);
    out[n++] = (unsigned char)id_len;
    memcpy(out + n, client_id, id_len);
    return n + id_len;
}

static int write_all(mbedtls_ssl_context *ssl, const unsigned char *data, size_t len) {
    while (len > 0) {
        int ret = mbedtls_ssl_write(ssl, data, len);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
            continue;
        }
        if (ret < 0) {
            return ret;
        }
        data += ret;
        len -= (size_t)ret;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *port = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    const char *sni = NULL, *alpn = NULL, *client_id = NULL;
    int no_sni = 0;
    uint32_t timeout_ms = 10000;
    int suites[MAX_SUITES + 1] = {0};
    int n_suites = 0;
    static const struct option options[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"ca", required_argument, NULL, 'a'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"sni", required_argument, NULL, 's'},
        {"no-sni", no_argument, NULL, 'n'},
        {"suite", required_argument, NULL, 'u'},
        {"alpn", required_argument, NULL, 'l'},
        {"mqtt-connect", required_argument, NULL, 'm'},
        {"timeout-ms", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'a': ca = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 's': sni = optarg; break;
        case 'n': no_sni = 1; break;
        case 'l': alpn = optarg; break;
        case 'm': client_id = optarg; break;
        case 't': timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'u': {
            char name[128];
            if (n_suites == MAX_SUITES || strlen(optarg) >= sizeof name) {
                return setup_error("too many or too long --suite values");
            }
            /* IANA names use '_'; mbedTLS's own use '-'. */
            for (size_t i = 0; i <= strlen(optarg); i++) {
                name[i] = optarg[i] == '_' ? '-' : optarg[i];
            }
            int id = mbedtls_ssl_get_ciphersuite_id(name);
            if (id == 0) {
                return setup_error("mbedTLS does not know the suite %s", optarg);
            }
            suites[n_suites++] = id;
            break;
        }
        default: return setup_error("unknown option (see the comment at the top of the source)");
        }
    }
    if (port == NULL || ca == NULL || (cert == NULL) != (key == NULL)) {
        return setup_error("--port and --ca are required; --cert and --key go together");
    }
    if (sni == NULL && !no_sni) {
        return setup_error("give --sni NAME or --no-sni");
    }

    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca_chain, own_cert;
    mbedtls_pk_context own_key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca_chain);
    mbedtls_x509_crt_init(&own_cert);
    mbedtls_pk_init(&own_key);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    const char *alpn_list[2] = {alpn, NULL};
    int status = 2;
    int ret;

    if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                     (const unsigned char *)"mbedtls_client", 14)) != 0) {
        status = report_error("setup", ret, NULL, 0);
        goto done;
    }
    if ((ret = mbedtls_x509_crt_parse_file(&ca_chain, ca)) != 0) {
        status = report_error("setup", ret, NULL, 0);
        goto done;
    }
    if (cert != NULL) {
        if ((ret = mbedtls_x509_crt_parse_file(&own_cert, cert)) != 0) {
            status = report_error("setup", ret, NULL, 0);
            goto done;
        }
#if MBEDTLS_VERSION_MAJOR >= 3
        ret = mbedtls_pk_parse_keyfile(&own_key, key, NULL, mbedtls_ctr_drbg_random, &drbg);
#else
        ret = mbedtls_pk_parse_keyfile(&own_key, key, NULL);
#endif
        if (ret != 0) {
            status = report_error("setup", ret, NULL, 0);
            goto done;
        }
    }
    if ((ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
                                           MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        status = report_error("setup", ret, NULL, 0);
        goto done;
    }
    /* TLS 1.2 only, as most firmware (and AWS's default policy here). */
    mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca_chain, NULL);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_read_timeout(&conf, timeout_ms);
    if (n_suites > 0) {
        mbedtls_ssl_conf_ciphersuites(&conf, suites);
    }
    if (cert != NULL && (ret = mbedtls_ssl_conf_own_cert(&conf, &own_cert, &own_key)) != 0) {
        status = report_error("setup", ret, NULL, 0);
        goto done;
    }
    if (alpn != NULL && (ret = mbedtls_ssl_conf_alpn_protocols(&conf, alpn_list)) != 0) {
        status = report_error("setup", ret, NULL, 0);
        goto done;
    }
    if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0) {
        status = report_error("setup", ret, NULL, 0);
        goto done;
    }
    /* Sets the SNI host_name and the name the server certificate is checked against. */
    if (!no_sni && (ret = mbedtls_ssl_set_hostname(&ssl, sni)) != 0) {
        status = report_error("setup", ret, NULL, 0);
        goto done;
    }

    if ((ret = mbedtls_net_connect(&net, host, port, MBEDTLS_NET_PROTO_TCP)) != 0) {
        status = report_error("connect", ret, NULL, 0);
        goto done;
    }
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    while ((ret = mbedtls_ssl_handshake(&ssl)) != 0) {
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) {
            uint32_t flags = ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED
                                 ? mbedtls_ssl_get_verify_result(&ssl)
                                 : 0;
            status = report_error("handshake", ret, &ssl, flags);
            goto done;
        }
    }

    unsigned char connack[4];
    size_t got = 0;
    if (client_id != NULL) {
        unsigned char packet[160];
        size_t len = mqtt_connect_packet(packet, sizeof packet, client_id);
        if (len == 0) {
            status = setup_error("client ID too long for this client");
            goto done;
        }
        if ((ret = write_all(&ssl, packet, len)) != 0) {
            status = report_error("mqtt", ret, &ssl, 0);
            goto done;
        }
        while (got < sizeof connack) {
            ret = mbedtls_ssl_read(&ssl, connack + got, sizeof connack - got);
            if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
                continue;
            }
            if (ret == 0) {
                ret = MBEDTLS_ERR_SSL_CONN_EOF;
            }
            if (ret < 0) {
                status = report_error("mqtt", ret, &ssl, 0);
                goto done;
            }
            got += (size_t)ret;
        }
    }

    const char *negotiated_alpn = mbedtls_ssl_get_alpn_protocol(&ssl);
    printf("{\"stage\":\"%s\",\"result\":\"ok\"", client_id != NULL ? "mqtt" : "handshake");
    json_string("version", mbedtls_ssl_get_version(&ssl));
    json_string("suite", mbedtls_ssl_get_ciphersuite(&ssl));
    if (negotiated_alpn != NULL) {
        json_string("alpn", negotiated_alpn);
    }
    if (client_id != NULL) {
        printf(",\"connack\":\"%02x%02x%02x%02x\"", connack[0], connack[1], connack[2],
               connack[3]);
    }
    printf("}\n");
    status = 0;
    mbedtls_ssl_close_notify(&ssl);

done:
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca_chain);
    mbedtls_x509_crt_free(&own_cert);
    mbedtls_pk_free(&own_key);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    fflush(stdout);
    return status;
}
