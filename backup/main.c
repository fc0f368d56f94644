/* rampart-backup: the command-line tool for consistent backups of PostgreSQL and MongoDB into one
 * verified archive (issue #8, docs/disaster-recovery.md). Not a server: no health endpoint and
 * no drain; flags, settings and JSON logs behave as in every other binary. The archive format
 * and the dumps are in backup.h; this file parses commands, shows progress (a bar on a
 * terminal, JSON lines otherwise) and applies the retention policy of `prune`.
 *
 *   create [--out DIR|FILE] [--only postgres|mongo] [--snapshot ID]
 *   verify ARCHIVE
 *   list DIR [--json]
 *   prune DIR --keep-daily N --keep-weekly N [--dry-run]
 *   restore ARCHIVE [--target-pg CONNINFO] [--target-mongo URI] [--force] */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "rampart/config.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/service.h"

#define PROG "rampart-backup"

static char *log_level, *pg_url, *mongo_url, *backup_dir, *migrations_dir;

static const struct rp_setting settings[] = {
    {"RAMPART_LOG_LEVEL", RP_SET_ENUM, "info", "lowest level logged", &log_level, 0, 0,
     "debug|info|warn|error", 0},
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MONGO_URL(&mongo_url),
    RP_SETTING_MIGRATIONS_DIR(&migrations_dir),
    {"RAMPART_BACKUP_DIR", RP_SET_STRING, ".",
     "where `create` writes its archive when --out is not given", &backup_dir, 0, 0, NULL, 0},
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct {
    const char *name;
    const char *usage;
    const char *help;
} commands[] = {
    {"create", "create [--out DIR|FILE] [--only postgres|mongo] [--snapshot ID]",
     "take a consistent backup of PostgreSQL and MongoDB into one archive"},
    {"verify", "verify ARCHIVE",
     "check every checksum and count of an archive without touching a database"},
    {"restore", "restore ARCHIVE [--target-pg CONNINFO] [--target-mongo URI] [--force]",
     "restore an archive into empty databases (default: the configured ones), verified first"},
    {"list", "list DIR [--json]", "list the archives in DIR with their time, schema and size"},
    {"prune", "prune DIR --keep-daily N --keep-weekly N [--dry-run]",
     "delete the archives in DIR that the retention policy does not keep"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(void)
{
    rp_config_print_help(stdout, PROG " COMMAND",
                         "Consistent backup of Rampart's PostgreSQL and "
                         "MongoDB data into one verified archive.",
                         settings, N_SETTINGS);
    printf("\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        printf("  %-52s %s\n", commands[i].usage, commands[i].help);
    printf("\nProgress goes to stderr as a bar on a terminal, otherwise as JSON lines on stdout;\n"
           "each command ends with one JSON line on stdout saying what it did.\n"
           "\nFlags:\n  --help, --version, --print-settings-markdown\n");
}

/* ---- progress ---------------------------------------------------------------------------- */

struct progress {
    int tty;
    long long last_ms;
    char what[160];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_progress(void *ud, const char *what, uint64_t done, uint64_t total, const char *unit)
{
    struct progress *p = ud;
    long long t = now_ms();
    int changed = strcmp(p->what, what) != 0;
    int finished = total > 0 && done >= total;
    if (!changed && !finished && t - p->last_ms < 200)
        return;
    if (changed && p->tty && p->what[0])
        fputc('\n', stderr);
    snprintf(p->what, sizeof(p->what), "%s", what);
    p->last_ms = t;
    if (p->tty) {
        if (total > 0) {
            int width = 30, filled = (int)((double)done / (double)total * width);
            if (filled > width)
                filled = width;
            fprintf(stderr, "\r%-40.40s [%.*s%*s] %3d%% %llu/%llu %s", what, filled,
                    "==============================", width - filled, "",
                    (int)((double)done * 100.0 / (double)total), (unsigned long long)done,
                    (unsigned long long)total, unit);
        } else {
            fprintf(stderr, "\r%-40.40s %llu %s", what, (unsigned long long)done, unit);
        }
        fflush(stderr);
    } else {
        printf("{\"progress\":\"%s\",\"done\":%llu,\"total\":%llu,\"unit\":\"%s\"}\n", what,
               (unsigned long long)done, (unsigned long long)total, unit);
        fflush(stdout);
    }
}

static void progress_end(struct progress *p)
{
    if (p->tty && p->what[0])
        fputc('\n', stderr);
    p->what[0] = '\0';
}

/* ---- create ------------------------------------------------------------------------------ */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmd_create(int argc, char **argv)
{
    const char *out = NULL, *only = NULL, *snapshot = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--snapshot") == 0 && i + 1 < argc)
            snapshot = argv[++i];
        else {
            rp_log(RP_LOG_FATAL, NULL,
                   "create: unexpected argument \"%.100s\"; usage: " PROG
                   " create [--out DIR|FILE] [--only postgres|mongo] [--snapshot ID]",
                   argv[i]);
            return 2;
        }
    }
    if (snapshot && !bk_snapshot_valid(snapshot)) {
        rp_log(RP_LOG_FATAL, NULL,
               "create: --snapshot \"%.70s\" is not a snapshot id; give what "
               "pg_export_snapshot() returned (like 00000003-0000001B-1)",
               snapshot);
        return 2;
    }
    if (snapshot && only && strcmp(only, "mongo") == 0) {
        rp_log(RP_LOG_FATAL, NULL,
               "create: --snapshot is a PostgreSQL snapshot: it makes no "
               "sense with --only mongo");
        return 2;
    }
    if (only && strcmp(only, "postgres") != 0 && strcmp(only, "mongo") != 0) {
        rp_log(RP_LOG_FATAL, NULL, "create: --only must be postgres or mongo, not \"%.50s\"", only);
        return 2;
    }
    if (!out)
        out = backup_dir;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32], iso[32];
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *path = is_dir(out) ? rp_xasprintf("%s/rampart-backup-%s%s%s.tar", out, stamp,
                                            only ? "-" : "", only ? only : "")
                             : rp_xstrdup(out);
    char *tmpdir = rp_xasprintf("%s.parts", path);
    struct bk_writer *w = NULL;
    struct bk_manifest m = {0};
    struct progress p = {.tty = isatty(STDERR_FILENO)};
    struct rp_error e = {0};
    long long t0 = now_ms();
    int rc = bk_writer_open(tmpdir, &w, &e);
    if (rc == RP_OK && (!only || strcmp(only, "postgres") == 0))
        rc = bk_pg_dump(pg_url, snapshot, w, &m, on_progress, &p, &e);
    if (rc == RP_OK && (!only || strcmp(only, "mongo") == 0))
        rc = bk_mongo_dump(mongo_url, w, &m, on_progress, &p, &e);
    progress_end(&p);
    if (rc == RP_OK) {
        m.format = BK_FORMAT;
        m.rampart_version = rp_xstrdup(RP_VERSION);
        m.created_at = rp_xstrdup(iso);
        rc = bk_writer_finish(w, &m, path, &e);
    }
    bk_writer_free(w);
    if (rc != RP_OK) {
        rp_log(RP_LOG_ERROR, NULL, "create: %s (nothing was written to %s)", e.msg, path);
    } else {
        struct stat st;
        uint64_t rows = 0, docs = 0;
        for (size_t i = 0; i < m.n_parts; i++)
            *(strcmp(m.parts[i].kind, "postgres") == 0 ? &rows : &docs) += m.parts[i].count;
        printf("{\"created\":\"%s\",\"bytes\":%lld,\"parts\":%zu,\"rows\":%llu,"
               "\"documents\":%llu,\"schema_version\":%d,\"seconds\":%.1f}\n",
               path, stat(path, &st) == 0 ? (long long)st.st_size : -1LL, m.n_parts,
               (unsigned long long)rows, (unsigned long long)docs, m.schema_version,
               (double)(now_ms() - t0) / 1000.0);
        rp_info("backup written to %s: %zu parts, %llu rows, %llu documents", path, m.n_parts,
                (unsigned long long)rows, (unsigned long long)docs);
    }
    bk_manifest_cleanup(&m);
    free(tmpdir);
    free(path);
    return rc == RP_OK ? 0 : 1;
}

/* ---- verify ------------------------------------------------------------------------------ */

static int cmd_verify(int argc, char **argv)
{
    if (argc != 1) {
        rp_log(RP_LOG_FATAL, NULL, "verify: usage: " PROG " verify ARCHIVE");
        return 2;
    }
    struct progress p = {.tty = isatty(STDERR_FILENO)};
    struct rp_error e = {0};
    long long t0 = now_ms();
    int rc = bk_verify(argv[0], on_progress, &p, &e);
    progress_end(&p);
    if (rc != RP_OK) {
        if (strncmp(e.msg, argv[0], strlen(argv[0])) == 0) /* the message names it already */
            rp_log(RP_LOG_ERROR, NULL, "verify: %s", e.msg);
        else
            rp_log(RP_LOG_ERROR, NULL, "verify: %s: %s", argv[0], e.msg);
        printf("{\"verified\":false,\"archive\":\"%s\"}\n", argv[0]);
        return 1;
    }
    printf("{\"verified\":true,\"archive\":\"%s\",\"seconds\":%.1f}\n", argv[0],
           (double)(now_ms() - t0) / 1000.0);
    return 0;
}

/* ---- restore ----------------------------------------------------------------------------- */

static int cmd_restore(int argc, char **argv)
{
    const char *archive = NULL, *tpg = pg_url, *tmongo = mongo_url;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--target-pg") == 0 && i + 1 < argc)
            tpg = argv[++i];
        else if (strcmp(argv[i], "--target-mongo") == 0 && i + 1 < argc)
            tmongo = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (!archive && argv[i][0] != '-')
            archive = argv[i];
        else {
            archive = NULL;
            break;
        }
    }
    if (!archive) {
        rp_log(RP_LOG_FATAL, NULL,
               "restore: usage: " PROG " restore ARCHIVE [--target-pg CONNINFO] "
               "[--target-mongo URI] [--force]");
        return 2;
    }
    /* only the databases the archive has parts for (an archive made with --only) */
    struct bk_reader *r = NULL;
    struct rp_error e = {0};
    int has_pg = 0, has_mongo = 0;
    if (bk_reader_open(archive, &r, &e) != RP_OK) {
        rp_log(RP_LOG_ERROR, NULL, "restore: %s", e.msg);
        return 1;
    }
    const struct bk_manifest *m = bk_reader_manifest(r);
    for (size_t i = 0; i < m->n_parts; i++)
        *(strcmp(m->parts[i].kind, "postgres") == 0 ? &has_pg : &has_mongo) = 1;
    bk_reader_close(r);
    struct progress p = {.tty = isatty(STDERR_FILENO)};
    long long t0 = now_ms();
    int rc = bk_restore(archive, has_pg ? tpg : NULL, has_mongo ? tmongo : NULL,
                        migrations_dir && *migrations_dir ? migrations_dir : NULL, force,
                        on_progress, &p, &e);
    progress_end(&p);
    if (rc != RP_OK) {
        rp_log(RP_LOG_ERROR, NULL, "restore: %s", e.msg);
        printf("{\"restored\":false,\"archive\":\"%s\"}\n", archive);
        return 1;
    }
    printf("{\"restored\":true,\"archive\":\"%s\",\"postgres\":%s,\"mongo\":%s,"
           "\"seconds\":%.1f}\n",
           archive, has_pg ? "true" : "false", has_mongo ? "true" : "false",
           (double)(now_ms() - t0) / 1000.0);
    rp_info("restored %s", archive);
    return 0;
}

/* ---- list and prune ---------------------------------------------------------------------- */

struct entry {
    char *path;
    char *created_at; /* from the manifest; NULL when unreadable */
    int schema;
    long long bytes;
    size_t parts;
    char *problem;
    int keep;
};

static int by_time_desc(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (!x->created_at || !y->created_at)
        return x->created_at ? -1 : y->created_at ? 1 : 0;
    return strcmp(y->created_at, x->created_at);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Every rampart-backup-*.tar in `dir`, newest first, with its manifest's facts. */
static int scan(const char *dir, struct entry **out, size_t *n)
{
    DIR *d = opendir(dir);
    *out = NULL;
    *n = 0;
    if (!d) {
        rp_log(RP_LOG_ERROR, NULL, "cannot open %s: %s", dir, strerror(errno));
        return RP_EIO;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "rampart-backup-", 15) != 0 || !ends_with(de->d_name, ".tar"))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = rp_xrealloc(*out, cap * sizeof(**out));
        }
        struct entry *x = &(*out)[(*n)++];
        memset(x, 0, sizeof(*x));
        x->path = rp_xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        x->bytes = stat(x->path, &st) == 0 ? (long long)st.st_size : -1;
        struct bk_reader *r = NULL;
        struct rp_error e = {0};
        if (bk_reader_open(x->path, &r, &e) == RP_OK) {
            const struct bk_manifest *m = bk_reader_manifest(r);
            x->created_at = rp_xstrdup(m->created_at);
            x->schema = m->schema_version;
            x->parts = m->n_parts;
            bk_reader_close(r);
        } else {
            x->problem = rp_xstrdup(e.msg);
        }
    }
    closedir(d);
    qsort(*out, *n, sizeof(**out), by_time_desc);
    return RP_OK;
}

static void entries_free(struct entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].path);
        free(v[i].created_at);
        free(v[i].problem);
    }
    free(v);
}

static int cmd_list(int argc, char **argv)
{
    int json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc < 1 || argc > 2 || (argc == 2 && !json)) {
        rp_log(RP_LOG_FATAL, NULL, "list: usage: " PROG " list DIR [--json]");
        return 2;
    }
    struct entry *v;
    size_t n;
    if (scan(argv[0], &v, &n) != RP_OK)
        return 1;
    if (!json)
        printf("%-52s %-20s %6s %12s %5s\n", "ARCHIVE", "CREATED", "SCHEMA", "BYTES", "PARTS");
    for (size_t i = 0; i < n; i++) {
        const char *base = strrchr(v[i].path, '/') ? strrchr(v[i].path, '/') + 1 : v[i].path;
        if (json)
            printf("{\"archive\":\"%s\",\"created_at\":%s%s%s,\"schema_version\":%d,"
                   "\"bytes\":%lld,\"parts\":%zu,\"readable\":%s}\n",
                   v[i].path, v[i].created_at ? "\"" : "",
                   v[i].created_at ? v[i].created_at : "null", v[i].created_at ? "\"" : "",
                   v[i].schema, v[i].bytes, v[i].parts, v[i].problem ? "false" : "true");
        else if (v[i].problem)
            printf("%-52s unreadable: %s\n", base, v[i].problem);
        else
            printf("%-52s %-20s %6d %12lld %5zu\n", base, v[i].created_at, v[i].schema, v[i].bytes,
                   v[i].parts);
    }
    entries_free(v, n);
    return 0;
}

/* Days since the epoch and ISO-8601-ish week number (Monday first) of "YYYY-MM-DDT..Z". */
static int day_and_week(const char *iso, long *day, long *week)
{
    struct tm tm = {0};
    if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                       &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *day = (long)(t / 86400);
    *week = (*day + 3) / 7; /* 1970-01-01 was a Thursday: weeks start on Monday */
    return 1;
}

/* A count from 0 to 10000, or -2 when the text is not one. */
static long count_arg(const char *s)
{
    char *end = NULL;
    long v = (*s >= '0' && *s <= '9') ? strtol(s, &end, 10) : -2;
    return end && *end == '\0' && v <= 10000 ? v : -2;
}

static int cmd_prune(int argc, char **argv)
{
    long daily = -1, weekly = -1;
    int dry = 0;
    const char *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--keep-daily") == 0 && i + 1 < argc)
            daily = count_arg(argv[++i]);
        else if (strcmp(argv[i], "--keep-weekly") == 0 && i + 1 < argc)
            weekly = count_arg(argv[++i]);
        else if (strcmp(argv[i], "--dry-run") == 0)
            dry = 1;
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else
            daily = -2;
    }
    if (!dir || daily < 0 || weekly < 0 || daily > 10000 || weekly > 10000) {
        rp_log(RP_LOG_FATAL, NULL,
               "prune: usage: " PROG " prune DIR --keep-daily N --keep-weekly N [--dry-run] "
               "(N from 0 to 10000)");
        return 2;
    }
    struct entry *v;
    size_t n;
    if (scan(dir, &v, &n) != RP_OK)
        return 1;
    /* newest first: keep the newest of each of the last `daily` days and `weekly` weeks that
     * have a backup, and always the newest readable one; an unreadable archive is never
     * deleted (an operator looks at it) */
    long last_day = -1, last_week = -1, days = 0, weeks = 0;
    int newest = 1, deleted = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        long day, week;
        if (v[i].problem || !day_and_week(v[i].created_at, &day, &week)) {
            v[i].keep = 1;
            continue;
        }
        if (newest)
            v[i].keep = 1, newest = 0;
        if (day != last_day && days < daily)
            v[i].keep = 1, days++, last_day = day;
        if (week != last_week && weeks < weekly)
            v[i].keep = 1, weeks++, last_week = week;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].keep) {
            kept++;
            continue;
        }
        if (!dry && unlink(v[i].path) != 0) {
            rp_log(RP_LOG_ERROR, NULL, "prune: cannot delete %s: %s", v[i].path, strerror(errno));
            continue;
        }
        deleted++;
        printf("{\"%s\":\"%s\"}\n", dry ? "would_delete" : "deleted", v[i].path);
    }
    printf("{\"kept\":%d,\"%s\":%d}\n", kept, dry ? "would_delete" : "deleted", deleted);
    entries_free(v, n);
    return 0;
}

int main(int argc, char **argv)
{
    int code = 2;
    struct rp_error e = {0};
    rp_log_init(PROG, NULL, RP_LOG_INFO);
    if (argc < 2) {
        rp_log(RP_LOG_FATAL, NULL,
               "a command is required (create, verify, restore, list, "
               "prune); see " PROG " --help");
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help();
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("%s %s\n", PROG, RP_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--print-settings-markdown") == 0) {
        rp_config_print_markdown(stdout, settings, N_SETTINGS);
        return 0;
    }
    size_t i = 0;
    while (i < N_COMMANDS && strcmp(cmd, commands[i].name) != 0)
        i++;
    if (i == N_COMMANDS) {
        rp_log(RP_LOG_FATAL, NULL, "unknown command \"%.100s\"; see " PROG " --help", cmd);
        return 2;
    }
    if (rp_config_load(settings, N_SETTINGS, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        goto out;
    }
    enum rp_log_level level = RP_LOG_INFO;
    (void)rp_log_level_parse(log_level, &level);
    rp_log_init(PROG, NULL, level);
    int rest = argc - 2;
    char **args = argv + 2;
    if (strcmp(cmd, "create") == 0)
        code = cmd_create(rest, args);
    else if (strcmp(cmd, "verify") == 0)
        code = cmd_verify(rest, args);
    else if (strcmp(cmd, "list") == 0)
        code = cmd_list(rest, args);
    else if (strcmp(cmd, "prune") == 0)
        code = cmd_prune(rest, args);
    else
        code = cmd_restore(rest, args);
out:
    rp_config_cleanup(settings, N_SETTINGS);
    return code;
}
