/* rampart-backup: the command-line tool for consistent backups of PostgreSQL and MongoDB into one
 * verified archive (create, verify, restore, list, prune). Not a server: no health endpoint and
 * no drain. For now the subcommands are declared and refuse to run (issue #8); flags, settings
 * and JSON logs already behave as in every other binary. */
#include <stdio.h>
#include <string.h>

#include "rampart/config.h"
#include "rampart/log.h"
#include "rampart/service.h"

#define PROG "rampart-backup"

static char *log_level, *pg_url, *mongo_url;

static const struct rp_setting settings[] = {
    {"RAMPART_LOG_LEVEL", RP_SET_ENUM, "info", "lowest level logged", &log_level, 0, 0,
     "debug|info|warn|error", 0},
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MONGO_URL(&mongo_url),
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct {
    const char *name;
    const char *help;
} commands[] = {
    {"create", "take a consistent backup of PostgreSQL and MongoDB into one archive"},
    {"verify", "check an archive's checksums and that it restores into a scratch database"},
    {"restore", "restore an archive into the configured servers"},
    {"list", "list archives with their time, size and verification state"},
    {"prune", "delete archives beyond the retention policy"},
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
        printf("  %-10s %s\n", commands[i].name, commands[i].help);
    printf("\nFlags:\n  --help, --version, --print-settings-markdown\n");
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
    rp_log(RP_LOG_FATAL, NULL, "%s: not implemented yet (issue #8)", commands[i].name);
    code = 2;
out:
    rp_config_cleanup(settings, N_SETTINGS);
    return code;
}
