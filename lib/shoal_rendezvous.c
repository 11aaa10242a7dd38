/*  shoal_rendezvous - same-host discovery through a folder of locked files. */
#include "shoal_private.h"
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>

#define SHOAL_RENDEZVOUS_SUFFIX ".node"
//  A dead node's file is renamed, not removed at once, so that every node
//  on the host learns of the death at its next scan, not only the finder;
//  it is removed once that has had time to happen
#define SHOAL_RENDEZVOUS_DEAD ".dead"
#define SHOAL_RENDEZVOUS_DEAD_KEEP 10       //  seconds

struct _shoal_rendezvous_t {
    char *folder;               //  DIRECTORY/CLUSTER
    char *path;                 //  our file
    char *name;                 //  its name in the folder
    int fd;                     //  held open: it holds the lock
};

//  Makes PATH as a folder of ours, or checks that it is one: a folder that
//  another user made in /tmp could be used to feed us endpoints
static int
s_own_folder (const char *path, char *error, size_t error_size)
{
    if (mkdir (path, 0700) && errno != EEXIST) {
        snprintf (error, error_size, "cannot make %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat info;
    if (lstat (path, &info) || !S_ISDIR (info.st_mode) || info.st_uid != getuid ()) {
        snprintf (error, error_size, "%s is not a folder owned by this user", path);
        return -1;
    }
    return 0;
}

static char *
s_default_directory (void)
{
    const char *runtime = getenv ("SHOAL_RUNTIME_DIR");
    if (runtime && *runtime)
        return strdup (runtime);
    runtime = getenv ("XDG_RUNTIME_DIR");
    if (runtime && *runtime)
        return zsys_sprintf ("%s/shoal", runtime);
    return zsys_sprintf ("/tmp/shoal-%u", (unsigned) getuid ());
}

shoal_rendezvous_t *
shoal_rendezvous_new (const char *directory, const char *cluster, const char *node,
                      const char *endpoint, char *error, size_t error_size)
{
    char *base = directory ? strdup (directory) : s_default_directory ();
    char *folder = zsys_sprintf ("%s/%s", base, cluster);
    int rc = s_own_folder (base, error, error_size);
    if (rc == 0)
        rc = s_own_folder (folder, error, error_size);
    free (base);
    if (rc) {
        free (folder);
        return NULL;
    }
    shoal_rendezvous_t *self = (shoal_rendezvous_t *) zmalloc (sizeof (shoal_rendezvous_t));
    self->folder = folder;
    self->name = zsys_sprintf ("%s" SHOAL_RENDEZVOUS_SUFFIX, node);
    self->path = zsys_sprintf ("%s/%s", folder, self->name);
    //  Written and locked under a temporary name, then renamed: a scanner
    //  never sees our file unlocked, so never takes it for a dead node's
    char *temporary = zsys_sprintf ("%s/%s.new", folder, node);
    self->fd = open (temporary, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    if (self->fd == -1 || flock (self->fd, LOCK_EX | LOCK_NB)
        || write (self->fd, endpoint, strlen (endpoint)) != (ssize_t) strlen (endpoint)
        || rename (temporary, self->path)) {
        snprintf (error, error_size, "cannot write %s: %s", temporary, strerror (errno));
        unlink (temporary);
        free (temporary);
        if (self->fd != -1)
            close (self->fd);
        self->fd = -1;
        shoal_rendezvous_destroy (&self);
        return NULL;
    }
    free (temporary);
    return self;
}

void
shoal_rendezvous_destroy (shoal_rendezvous_t **self_p)
{
    shoal_rendezvous_t *self = *self_p;
    if (!self)
        return;
    if (self->fd != -1) {
        unlink (self->path);
        close (self->fd);
    }
    free (self->folder);
    free (self->path);
    free (self->name);
    free (self);
    *self_p = NULL;
}

//  If NAME ends with SUFFIX, the node id before it (in ID), else false
static bool
s_node_of (const char *name, const char *suffix, char *id, size_t id_size)
{
    size_t length = strlen (name), tail = strlen (suffix);
    if (length <= tail || length - tail >= id_size || strcmp (name + length - tail, suffix))
        return false;
    memcpy (id, name, length - tail);
    id [length - tail] = 0;
    return true;
}

void
shoal_rendezvous_scan (shoal_rendezvous_t *self, zlistx_t *endpoints, zlistx_t *dead)
{
    DIR *folder = opendir (self->folder);
    if (!folder)
        return;
    struct dirent *entry;
    char id [128];
    while ((entry = readdir (folder))) {
        if (s_node_of (entry->d_name, SHOAL_RENDEZVOUS_DEAD, id, sizeof (id))) {
            struct stat info;
            if (fstatat (dirfd (folder), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) == 0
                && time (NULL) - info.st_ctime > SHOAL_RENDEZVOUS_DEAD_KEEP)
                unlinkat (dirfd (folder), entry->d_name, 0);
            else if (dead)
                zlistx_add_end (dead, strdup (id));
            continue;
        }
        if (!s_node_of (entry->d_name, SHOAL_RENDEZVOUS_SUFFIX, id, sizeof (id))
            || streq (entry->d_name, self->name))
            continue;
        int fd = openat (dirfd (folder), entry->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd == -1)
            continue;
        if (flock (fd, LOCK_SH | LOCK_NB) == 0) {
            //  Nobody holds it: its node is dead. Renamed, atomically, so
            //  that the other scanners learn it too
            char *grave = zsys_sprintf ("%s" SHOAL_RENDEZVOUS_DEAD, id);
            renameat (dirfd (folder), entry->d_name, dirfd (folder), grave);
            free (grave);
            if (dead)
                zlistx_add_end (dead, strdup (id));
        }
        else {
            char endpoint [256];
            ssize_t size = read (fd, endpoint, sizeof (endpoint) - 1);
            if (size > 6) {
                endpoint [size] = 0;
                zlistx_add_end (endpoints, strdup (endpoint));
            }
        }
        close (fd);
    }
    closedir (folder);
}

void
shoal_rendezvous_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_rendezvous: ");
    char base [] = "/tmp/shoal-rendezvous-test-XXXXXX";
    assert (mkdtemp (base));
    char error [256];
    shoal_rendezvous_t *first = shoal_rendezvous_new (base, "test", "aaa",
                                                      "tcp://127.0.0.1:1001", error,
                                                      sizeof (error));
    shoal_rendezvous_t *second = shoal_rendezvous_new (base, "test", "bbb",
                                                       "tcp://127.0.0.1:1002", error,
                                                       sizeof (error));
    shoal_rendezvous_t *elsewhere = shoal_rendezvous_new (base, "other", "ccc",
                                                          "tcp://127.0.0.1:1003", error,
                                                          sizeof (error));
    assert (first && second && elsewhere);
    zlistx_t *found = zlistx_new ();
    zlistx_set_destructor (found, (zlistx_destructor_fn *) zstr_free);
    //  Each sees the other of its cluster, and not the other cluster
    shoal_rendezvous_scan (first, found, NULL);
    assert (zlistx_size (found) == 1 && streq (zlistx_first (found), "tcp://127.0.0.1:1002"));
    zlistx_purge (found);

    //  A file nobody holds locked is a dead node's: it is removed
    char *stale = zsys_sprintf ("%s/test/ddd.node", base);
    FILE *file = fopen (stale, "w");
    fputs ("tcp://127.0.0.1:1004", file);
    fclose (file);
    zlistx_t *dead = zlistx_new ();
    zlistx_set_destructor (dead, (zlistx_destructor_fn *) zstr_free);
    shoal_rendezvous_scan (first, found, dead);
    assert (zlistx_size (found) == 1);
    assert (access (stale, F_OK) == -1);
    assert (zlistx_size (dead) == 1 && streq (zlistx_first (dead), "ddd"));
    //  ...and every other scanner learns of that death too
    zlistx_purge (dead);
    zlistx_purge (found);
    shoal_rendezvous_scan (second, found, dead);
    assert (zlistx_size (dead) == 1 && streq (zlistx_first (dead), "ddd"));
    zlistx_destroy (&dead);
    zlistx_purge (found);
    free (stale);

    //  Leaving removes the file
    shoal_rendezvous_destroy (&second);
    shoal_rendezvous_scan (first, found, NULL);
    assert (zlistx_size (found) == 0);

    //  A folder that is not ours is refused
    assert (shoal_rendezvous_new ("/proc", "x", "eee", "tcp://127.0.0.1:1", error,
                                  sizeof (error)) == NULL);
    zlistx_destroy (&found);
    shoal_rendezvous_destroy (&first);
    shoal_rendezvous_destroy (&elsewhere);
    char *command = zsys_sprintf ("rm -rf %s", base);
    assert (system (command) == 0);
    free (command);
    if (verbose)
        printf ("OK\n");
}
