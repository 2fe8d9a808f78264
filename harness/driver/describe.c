/* psa-stress: the build's capabilities (see describe.h). */
#include "driver/describe.h"

#include <stdbool.h>
#include <string.h>

#include <psa/crypto.h>

#include "driver/client.h"

/* The operations whose function the tree lacks (CMakeLists.txt's probes). */
static bool available(const char *op)
{
    if (strcmp(op, "reseed") == 0) {
        return PSA_STRESS_HAVE_RANDOM_RESEED;
    }
    if (strcmp(op, "deplete") == 0) {
        return PSA_STRESS_HAVE_RANDOM_DEPLETE;
    }
    return true;
}

const char *describe_key_store_kind(void)
{
#if defined(MBEDTLS_PSA_KEY_STORE_DYNAMIC)
    return "dynamic";
#else
    return "static"; /* the only store before 3.6.1 */
#endif
}

void describe_print(FILE *f)
{
    fprintf(f, "{\"mbedtls_version\":\"%s\",\"key_store\":{\"kind\":\"%s\",\"slot_count\":%d},"
            "\"operations\":[", MBEDTLS_VERSION_STRING, describe_key_store_kind(),
            MBEDTLS_PSA_KEY_SLOT_COUNT);
    const char *sep = "";
    for (unsigned op = 0; op < client_op_count(); op++) {
        if (available(client_op_name(op))) {
            fprintf(f, "%s\"%s\"", sep, client_op_name(op));
            sep = ",";
        }
    }
    fputs("]}\n", f);
}
