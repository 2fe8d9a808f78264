/* psa-stress: the key-slot mutex's lock sites and their names (see lock_sites.h). */
#define _GNU_SOURCE
#include "inside/lock_sites.h"

#include <ctype.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver/tsan_hide.h"

#define NAME_LEN 96

/* Invariant: read and written only by the holder of the key-slot mutex (lock_sites.h). */
static const void *sites[LOCK_SITES];
static unsigned n_sites;

/* After the run only. */
static char names[LOCK_SITES + 1][NAME_LEN];
static bool resolved;

TSAN_UNTRACKED unsigned lock_sites_index(const void *pc) /* ordered by the key-slot mutex */
{
    for (unsigned i = 0; i < n_sites; i++) {
        if (sites[i] == pc) {
            return i;
        }
    }
    if (n_sites == LOCK_SITES) {
        return LOCK_SITE_OTHER;
    }
    sites[n_sites] = pc;
    return n_sites++;
}

/* The address of the call instruction before `pc`, as the executable's file numbers it (a
 * position-independent executable is numbered from 0, wherever it was loaded). */
static uintptr_t file_address(const void *pc)
{
    uintptr_t address = (uintptr_t) pc - 1;
    Dl_info info;
    if (dladdr(pc, &info) == 0 || info.dli_fbase == NULL) {
        return address;
    }
    const ElfW(Ehdr) *header = info.dli_fbase;
    return header->e_type == ET_DYN ? address - (uintptr_t) info.dli_fbase : address;
}

/* The function whose body holds line `line` of C file `path`, by the layout every Mbed TLS
 * source follows (a definition starts at column 0 with its return type, statements are
 * indented): the name before the first '(' of the last such line above it. False when the file
 * cannot be read. */
static bool enclosing_function(const char *path, unsigned long line, char *name)
{
    FILE *source = fopen(path, "r");
    if (source == NULL) {
        return false;
    }
    char text[512];
    bool found = false;
    for (unsigned long n = 1; n <= line && fgets(text, sizeof text, source) != NULL; n++) {
        char *paren = strchr(text, '(');
        if (!isalpha((unsigned char) text[0]) || paren == NULL) {
            continue;
        }
        char *end = paren;
        while (end > text && (isalnum((unsigned char) end[-1]) || end[-1] == '_')) {
            end--;
        }
        if (end < paren && strchr(text, ';') == NULL) { /* a prototype is not a body */
            snprintf(name, NAME_LEN, "%.*s", (int) (paren - end), end);
            found = true;
        }
    }
    fclose(source);
    return found;
}

/* Names site `index` from addr2line's innermost frame: its function, then "file:line". */
static void name_site(unsigned index, const char *function, const char *location)
{
    char path[400];
    unsigned long line = 0;
    const char *colon = strrchr(location, ':');
    if (colon != NULL && (size_t) (colon - location) < sizeof path) {
        snprintf(path, sizeof path, "%.*s", (int) (colon - location), location);
        line = strtoul(colon + 1, NULL, 10);
    }
    if (line == 0 || !enclosing_function(path, line, names[index])) {
        if (strcmp(function, "??") != 0) {
            snprintf(names[index], NAME_LEN, "%s", function);
        }
    }
}

/* Reads addr2line's answer: per address, a line "0x...", then the innermost frame's function
 * and location; the enclosing functions of an inlined one follow, skipped. */
static void read_names(FILE *answer, const uintptr_t *addresses)
{
    char line[512], function[NAME_LEN];
    int current = -1;
    bool have_function = false;
    while (fgets(line, sizeof line, answer) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "0x", 2) == 0) {
            uintptr_t address = (uintptr_t) strtoull(line, NULL, 16);
            current = -1;
            have_function = false;
            for (unsigned i = 0; i < n_sites; i++) {
                current = addresses[i] == address ? (int) i : current;
            }
        } else if (current >= 0 && !have_function) {
            snprintf(function, sizeof function, "%s", line);
            have_function = true;
        } else if (current >= 0) {
            name_site((unsigned) current, function, line);
            current = -1;
        }
    }
}

static void resolve(void)
{
    resolved = true;
    uintptr_t addresses[LOCK_SITES];
    char command[96 + LOCK_SITES * 20];
    size_t used = (size_t) snprintf(command, sizeof command, "addr2line -f -i -a -e /proc/%ld/exe",
                                    (long) getpid()); /* this process's file, not the shell's */
    for (unsigned i = 0; i < n_sites; i++) {
        addresses[i] = file_address(sites[i]);
        snprintf(names[i], NAME_LEN, "0x%llx", (unsigned long long) addresses[i]);
        used += (size_t) snprintf(command + used, sizeof command - used, " 0x%llx",
                                  (unsigned long long) addresses[i]);
    }
    snprintf(names[LOCK_SITE_OTHER], NAME_LEN, "other");
    snprintf(command + used, sizeof command - used, " 2>/dev/null");
    FILE *answer = n_sites > 0 ? popen(command, "r") : NULL;
    if (answer != NULL) {
        read_names(answer, addresses);
        pclose(answer);
    }
}

const char *lock_sites_name(unsigned index)
{
    if (!resolved) {
        resolve();
    }
    return index <= LOCK_SITE_OTHER ? names[index] : "other";
}
