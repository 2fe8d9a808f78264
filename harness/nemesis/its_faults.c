/* psa-stress: storage faults (--faults storage=R,storage-delay=R; see faults.h).
 *
 * The driver is linked with -Wl,--wrap for the four ITS entry points (CMakeLists.txt), so the
 * core's storage calls come here first and reach the stock file backend (psa_its_file.c, files
 * in the run's storage directory) only when no failure is injected. The Mbed TLS tree is not
 * modified, and the files stay where harness/inside/inspect.c lists them. The key store makes every
 * ITS call with the key-slot mutex held (docs/properties.md §1.4). */
#include "nemesis/faults.h"

#include "psa_crypto_its.h"

/* The stock backend's functions, under the names the linker gives them with --wrap. */
psa_status_t __real_psa_its_set(psa_storage_uid_t uid, uint32_t data_length, const void *p_data,
                                psa_storage_create_flags_t create_flags);
psa_status_t __real_psa_its_get(psa_storage_uid_t uid, uint32_t data_offset,
                                uint32_t data_length, void *p_data, size_t *p_data_length);
psa_status_t __real_psa_its_get_info(psa_storage_uid_t uid, struct psa_storage_info_t *p_info);
psa_status_t __real_psa_its_remove(psa_storage_uid_t uid);

/* A failed set writes nothing: no partial object survives a failed creation. */
psa_status_t __wrap_psa_its_set(psa_storage_uid_t uid, uint32_t data_length, const void *p_data,
                                psa_storage_create_flags_t create_flags)
{
    psa_status_t injected = faults_storage(FAULTS_ITS_SET);
    return injected != PSA_SUCCESS ? injected
                                   : __real_psa_its_set(uid, data_length, p_data, create_flags);
}

/* A failed get reads nothing (*p_data_length stays as the caller set it). */
psa_status_t __wrap_psa_its_get(psa_storage_uid_t uid, uint32_t data_offset,
                                uint32_t data_length, void *p_data, size_t *p_data_length)
{
    psa_status_t injected = faults_storage(FAULTS_ITS_GET);
    return injected != PSA_SUCCESS ? injected
                                   : __real_psa_its_get(uid, data_offset, data_length, p_data,
                                                        p_data_length);
}

psa_status_t __wrap_psa_its_get_info(psa_storage_uid_t uid, struct psa_storage_info_t *p_info)
{
    psa_status_t injected = faults_storage(FAULTS_ITS_GET_INFO);
    return injected != PSA_SUCCESS ? injected : __real_psa_its_get_info(uid, p_info);
}

/* A failed remove leaves the object in place. */
psa_status_t __wrap_psa_its_remove(psa_storage_uid_t uid)
{
    psa_status_t injected = faults_storage(FAULTS_ITS_REMOVE);
    return injected != PSA_SUCCESS ? injected : __real_psa_its_remove(uid);
}
