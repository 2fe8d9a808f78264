/* psa-stress: the binary history form (see history_binary.h and docs/history-format.md).
 *
 * The layout table below is the contract with the Python reader (scenarios/history/binary.py):
 * header.json lists every record field with its offset, size and type, so record.h may gain or
 * move fields without breaking old readers. To add a field to record_t, add one LAYOUT_ROW. */
#define _GNU_SOURCE /* openat, mkdirat flags */

#include "history/history_binary.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREAD_MAGIC "PSATHRD1"
#define COMMITTED_OFFSET 16

/* The JSON type of a record field, from its C type (arrays decay to a byte pointer). */
#define FIELD_TYPE(x) _Generic((x), uint64_t: "u64", uint32_t: "u32", int32_t: "i32", \
                               uint16_t: "u16", uint8_t: "u8", uint8_t *: "bytes")
#define LAYOUT_ROW(member) \
    { #member, offsetof(record_t, member), sizeof(((record_t *) 0)->member), \
      FIELD_TYPE(((record_t *) 0)->member) }

static const struct {
    const char *name;
    size_t offset, size;
    const char *type;
} layout[] = {
    LAYOUT_ROW(call), LAYOUT_ROW(ret), LAYOUT_ROW(seq), LAYOUT_ROW(thread), LAYOUT_ROW(op),
    LAYOUT_ROW(material_len), LAYOUT_ROW(input_len), LAYOUT_ROW(stage), LAYOUT_ROW(status),
    LAYOUT_ROW(key), LAYOUT_ROW(out_key), LAYOUT_ROW(attrs.lifetime), LAYOUT_ROW(attrs.id),
    LAYOUT_ROW(attrs.type), LAYOUT_ROW(attrs.bits), LAYOUT_ROW(attrs.usage),
    LAYOUT_ROW(attrs.alg), LAYOUT_ROW(mid), LAYOUT_ROW(material), LAYOUT_ROW(salt),
    LAYOUT_ROW(input),
};

static size_t page_size(void)
{
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? (size_t) size : 4096;
}

size_t history_page_records(void)
{
    return page_size(); /* n * page_size records fill n * sizeof(record_t) whole pages */
}

static void print_layout(FILE *f)
{
    fprintf(f, "{\"record_size\":%zu,\"header_page\":%zu,\"fields\":[", sizeof(record_t),
            page_size());
    for (size_t i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
        fprintf(f, "%s{\"name\":\"%s\",\"offset\":%zu,\"size\":%zu,\"type\":\"%s\"}",
                i == 0 ? "" : ",", layout[i].name, layout[i].offset, layout[i].size,
                layout[i].type);
    }
    fputc(']', f);
}

/* Written whole to a temporary name, then renamed: a reader never sees half a header. */
static bool write_header(int dir, const history_header_t *h, const history_printer_t *p)
{
    int fd = openat(dir, "header.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        return false;
    }
    history_print_run_header(f, h);
    fputs(",\"binary\":", f);
    print_layout(f);
    fputs(",\"ops\":[", f);
    for (unsigned op = 0; op < p->op_count(); op++) {
        fputs(op == 0 ? "" : ",", f);
        history_print_string(f, p->op_name(op));
    }
    fputs("],\"statuses\":", f);
    history_print_status_table(f);
    fputs(",\"constants\":", f);
    if (p->print_constants != NULL) {
        p->print_constants(f);
    } else {
        fputs("{}", f);
    }
    fputs("}}\n", f);
    return fclose(f) == 0 && renameat(dir, "header.json.tmp", dir, "header.json") == 0;
}

/* Gives the record file `fd` real blocks for [offset, offset + len) before they are mapped: a
 * store into a mapped hole that the file system cannot back (disk full) is a SIGBUS, which
 * would look like a crash of the library. Exits HISTORY_EXIT_WRITE with one line instead. */
static void reserve(int fd, off_t offset, size_t len)
{
    int err = posix_fallocate(fd, offset, (off_t) len);
    if (err != 0) {
        fprintf(stderr, "psa-stress: history write error: cannot grow a record file to %lld "
                "bytes: %s\n", (long long) offset + (long long) len, strerror(err));
        _exit(HISTORY_EXIT_WRITE); /* no atexit handlers: the other workers still run */
    }
}

bool history_binary_open(int *dir, const char *path, const history_header_t *h,
                         const history_printer_t *p)
{
    /* Past RLIMIT_FSIZE a write fails with EFBIG (reported by reserve) instead of killing. */
    signal(SIGXFSZ, SIG_IGN);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return false;
    }
    *dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dir < 0) {
        return false;
    }
    unlinkat(*dir, "end.json", 0); /* a stale end marker would claim this run completed */
    if (!write_header(*dir, h, p)) {
        int saved = errno;
        close(*dir);
        errno = saved;
        return false;
    }
    return true;
}

bool history_binary_log_open(int dir, unsigned thread, history_log_t *log)
{
    char name[32];
    snprintf(name, sizeof(name), "thread-%04u.bin", thread);
    size_t page = page_size();
    log->fd = openat(dir, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log->fd < 0) {
        return false;
    }
    reserve(log->fd, 0, page);
    uint8_t *head = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd, 0);
    if (head == MAP_FAILED) {
        return false;
    }
    uint32_t ids[2] = { thread, (uint32_t) sizeof(record_t) };
    memcpy(head, THREAD_MAGIC, 8);
    memcpy(head + 8, ids, sizeof(ids));
    log->committed = (_Atomic uint64_t *) (head + COMMITTED_OFFSET);
    atomic_init(log->committed, 0);
    return true;
}

void history_binary_log_close(history_log_t *log)
{
    if (log->committed != NULL) {
        munmap((uint8_t *) log->committed - COMMITTED_OFFSET, page_size());
        log->committed = NULL;
    }
    if (log->fd >= 0) {
        close(log->fd);
        log->fd = -1;
    }
}

record_t *history_binary_map(const history_log_t *log, size_t cap)
{
    struct stat st;
    if (fstat(log->fd, &st) != 0) {
        return NULL;
    }
    reserve(log->fd, st.st_size, cap * sizeof(record_t));
    void *records = mmap(NULL, cap * sizeof(record_t), PROT_READ | PROT_WRITE, MAP_SHARED,
                         log->fd, st.st_size);
    return records == MAP_FAILED ? NULL : records;
}

void history_binary_unmap(record_t *records, size_t cap)
{
    munmap(records, cap * sizeof(record_t));
}

bool history_binary_close(int dir, const history_log_t *const *logs, uint64_t records,
                          const history_header_t *h, const history_printer_t *p)
{
    unsigned threads = h->threads;
    /* Again, now that the nemesis's counts (faults injected...) are final. */
    bool ok = write_header(dir, h, p);
    for (unsigned t = 0; t < threads; t++) {
        if (logs[t]->committed != NULL) {
            atomic_store_explicit(logs[t]->committed, logs[t]->handed_out, memory_order_release);
        }
    }
    int fd = openat(dir, "end.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    ok = ok && f != NULL;
    if (f != NULL) {
        fprintf(f, "{\"end\":{\"records\":%llu,\"complete\":true",
                (unsigned long long) records);
        if (h->print_end != NULL) {
            h->print_end(f); /* the driver's findings after the join (live keys...) */
        }
        fputs("}}\n", f);
        ok = fclose(f) == 0 && ok;
    }
    return close(dir) == 0 && ok;
}
