# audittui's remote side: list an audit-log folder (or one file and its lumberjack backups)
# and send what is new in each file, framed, on standard output. POSIX sh with ls, awk, dd,
# cksum, tail, cat, grep and sleep; nothing is written on the host. Nothing read from the host
# is ever run as code: there is no eval, and a name is only ever a quoted expansion or a line
# of data (awk's program is fixed; names reach it on its input).
# The prelude before it sets P (the path), T (the frame token), ONCE (one round, then exit),
# SKIP (leave the backups present at the start unsent), BSTEM and BEXT (a file's backup name:
# BSTEM-<time>BEXT[.gz]), DONE (plain backups already read whole, one a line, between
# newlines) and W (the files known: "<inode> - <bytes already sent> - <name>" lines).
#
# W is the state, one line per file listed: "<inode> <size> <offset> <fingerprint> <name>"
# (offset "-": not decided yet; fingerprint "-" or "<n>:<cksum of its first n bytes>"). Inode
# numbers are reused as soon as a file is deleted: a file's offset is kept only while its
# inode stays listed under a name it can have, with the same first bytes.
#
# Names come from a glob, which gives them exactly; `ls -lniLd` is asked about those names
# only (each as "$D/<name>", so a name's leading spaces follow the slash) and its lines are
# matched to them by awk: an inode and a size are taken only from a line that ends with a
# name asked for and holds digits where they go. A name with a tab or a byte not ASCII is
# asked about alone (busybox's ls prints those as ?). A name holding a newline is never
# listed (it cannot be one line of a frame): it is reported.
#
# Frames: "L" + "<inode> <size> <name>" lines + "M" (the listing, when it changed);
# "N <inode> <name>" (a new file under a known inode number); "D <inode> <offset> <name>",
# the bytes from there to the end, "\n<T> <status>"; "T <inode> <name>" (truncated in place:
# sent again from 0); "X <inode> denied|gone <name>"; "U newline <name, each newline as \n>"
# and "U unlisted <name>" (a file not read: its name cannot be framed, or ls did not list it
# exactly); "R" (a round sent); "K file|folder" (what P is); "E denied|nosuch <path>" (cannot
# go on).

NL='
'
au_ts='[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]-[0-9][0-9]-[0-9][0-9].[0-9][0-9][0-9]'
AU_CHUNK=128 # names per ls: far below any ARG_MAX

# The join of W with the listing (stdin: W, "=", then au_list's lines: "/<name>" per name
# globbed, U frames, and ls lines): the U frames first, then per file listed, in the glob's
# order, "<inode> <size> <offset> <fingerprint> <name>", and "/<its name in W>" after it
# when its inode had another name (a name holds no slash); "? <name>" for a name that no
# well-formed line of ls lists (gone since the glob, or printed otherwise by ls). A folder or
# a device is left out; an inode listed twice (a hard link) is read under its first name.
AU_JOIN='
BEGIN { D = ENVIRON["AU_D"]; part = 0 }
$0 == "=" { part = 1; next }
$0 == "" || $0 == "." { next }
part == 0 {
    rest = $0
    for (k = 0; k < 4; k++) rest = substr(rest, index(rest, " ") + 1)
    key = "i" $1; state[key] = $3 " " $4; had[key] = rest
    next
}
/^\// { n++; names[n] = substr($0, 2); asked[names[n]] = 1; next }
/^U / { print; next }
{
    at = index($0, " " D "/")
    if (at == 0) next
    name = substr($0, at + length(D) + 2)
    if (!(name in asked)) next
    count = split(substr($0, 1, at - 1), f, " ")
    if (f[2] !~ /^[-]/) { listed[name] = 1; next }
    if (count < 7 || f[1] !~ /^[0-9]+$/ || f[6] !~ /^[0-9]+$/) next
    listed[name] = 1; ino[name] = f[1]; size[name] = f[6]
}
END {
    for (k = 1; k <= n; k++) {
        name = names[k]
        if (!(name in listed)) { print "? " name; continue }
        if (!(name in ino)) continue
        key = "i" ino[name]
        if (key in taken) continue
        taken[key] = 1
        line = ino[name] " " size[name] " " ((key in state) ? state[key] : "- -") " " name
        if ((key in had) && had[key] != name) line = line "/" had[key]
        print line
    }
}'

au_backup() {  # is $1 a lumberjack backup's name?
    case $1 in *-$au_ts | *-$au_ts.*) return 0 ;; esac
    return 1
}

au_wanted() {  # is $1 a log file of the target?
    case $1 in .*) return 1 ;; esac
    if [ -n "$F" ]; then
        case $1 in "$F" | "$BSTEM"-$au_ts"$BEXT" | "$BSTEM"-$au_ts"$BEXT".gz) return 0 ;; esac
        return 1
    fi
    au_backup "$1" && return 0
    case $1 in *.log | *.json | *.jsonl | *.ndjson | *.txt | *.gz) return 0 ;; *.*) return 1 ;; esac
    return 0
}

au_why() {  # E frame for a path that cannot be listed
    if [ -e "$1" ] || [ -n "$(ls -d -- "$1" 2>&1 >/dev/null | grep -i 'permission denied')" ]; then
        printf 'E denied %s\n' "$1"
    else
        printf 'E nosuch %s\n' "$1"
    fi
}

au_shown() {  # AU_SHOWN: $1 with each newline written \n (to be shown, never used)
    AU_SHOWN= au_r=$1
    while :; do
        case $au_r in *"$NL"*) ;; *) break ;; esac
        AU_SHOWN="$AU_SHOWN${au_r%%"$NL"*}\\n"
        au_r=${au_r#*"$NL"}
    done
    AU_SHOWN=$AU_SHOWN$au_r
}

au_list() {  # the listing (run in a subshell): an empty line, then "/<name>" per wanted name
    # (exact, from a glob) each followed by its ls lines, U frames for names that cannot be
    # framed, and "." (a last line)
    printf '\n'
    set --
    for au_p in "$D"/*; do
        au_n=${au_p#"$D"/}
        au_wanted "$au_n" || continue
        case $au_n in
        *"$NL"*)
            au_shown "$au_n"
            printf 'U newline %s\n' "$AU_SHOWN"
            continue
            ;;
        *[![:print:]]*) # a tab, a byte not ASCII: ls may print it otherwise (busybox: ?)
            printf '/%s\n' "$au_n"
            au_alone "$au_p"
            continue
            ;;
        esac
        printf '/%s\n' "$au_n"
        set -- "$@" "$au_p"
        if [ $# -ge $AU_CHUNK ]; then
            ls -lniLd -- "$@" 2>/dev/null
            set --
        fi
    done
    if [ $# -gt 0 ]; then ls -lniLd -- "$@" 2>/dev/null; fi
    printf '.\n'
}

au_alone() {  # the ls -lniLd line of the file $1 alone, with its name as asked
    au_r=$(ls -lniLd -- "$1" 2>/dev/null)
    case $au_r in *"$NL"*) return ;; esac
    set -f
    set -- "$1" $au_r # the fields before the name are ls's own: no space in them
    set +f
    [ $# -ge 8 ] && printf '%s %s %s %s %s %s - - - %s\n' "$2" "$3" "$4" "$5" "$6" "$7" "$1"
}

au_join() {
    AU_D=$D awk "$AU_JOIN" <<AU_EOF
$W
=
$AU_RAW
AU_EOF
}

au_fields() {  # a line of W → ino size o fp name
    ino=${1%% *}
    au_r=${1#* }
    size=${au_r%% *}
    au_r=${au_r#* }
    o=${au_r%% *}
    au_r=${au_r#* }
    fp=${au_r%% *}
    name=${au_r#* }
}

au_same() {  # can the file named $1 at the last listing be the one named $2 now?
    [ "$1" = "$2" ] && return 0
    # only a live file renamed to a plain backup: lumberjack writes each .gz anew
    case $2 in *.gz) return 1 ;; esac
    au_backup "$2" && ! au_backup "$1"
}

au_print() {  # a plain file's first bytes unlike when first seen mean another file under the
    # same inode number (a fast rotation: the live file gzipped and deleted, and a newer one
    # given its number between two listings): its offset is dropped
    case $DONE in *"$NL$name$NL"*) return ;; esac # a backup read whole: it no longer changes
    if [ "$fp" != - ]; then
        au_c=$(dd if="$D/$name" bs="${fp%%:*}" count=1 2>/dev/null | cksum)
        [ "$fp" = "${fp%%:*}:${au_c%% *}:${au_c#* }" ] && return
        o=- fp=-
        printf 'N %s %s\n' "$ino" "$name"
    fi
    [ "$size" -gt 0 ] || return
    au_c=$size
    [ "$au_c" -gt 256 ] && au_c=256 # an event's first bytes: its auditID and time
    fp=$au_c:$(dd if="$D/$name" bs="$au_c" count=1 2>/dev/null | cksum)
    fp=${fp%% *}:${fp#* }
}

au_forget() {  # W from a new listing (N frames for the files replaced); AU_U: U frames
    au_w= AU_U=
    set -f
    IFS=$NL
    set -- $(au_join) # a line a parameter (no line is empty)
    unset IFS
    set +f
    for au_line; do
        case $au_line in
        'U '*)
            AU_U="$AU_U$au_line$NL"
            continue
            ;;
        '? '*)
            au_n=${au_line#??}
            if [ -e "$D/$au_n" ]; then AU_U="${AU_U}U unlisted $au_n$NL"; fi
            continue
            ;;
        esac
        au_fields "$au_line"
        case $name in */*) # renamed: is it the file its inode was?
            au_old=${name#*/}
            name=${name%%/*}
            au_same "$au_old" "$name" || o=- fp=-
            ;;
        esac
        case $name in *.gz) ;; *) au_print ;; esac
        au_w="$au_w$ino $size $o $fp $name$NL"
    done
    W=$au_w
}

au_listing() {  # the L frame: W's files
    printf 'L\n'
    set -f
    IFS=$NL
    set -- $W
    unset IFS
    set +f
    for au_line; do
        au_fields "$au_line"
        printf '%s %s %s\n' "$ino" "$size" "$name"
    done
    printf 'M\n'
}

au_done() {  # note that plain backup $1 was read to its end (its .gz is not needed)
    case $DONE in *"$NL$1$NL"*) return 0 ;; esac
    DONE="$DONE$1$NL"
}

au_copy() {  # $1 inode, $2 offset, $3 name; fd 3 is open on the file
    set -- "$1" "$2" "$3" $(ls -iL /dev/fd/3 2>/dev/null)
    # replaced since the listing (rotated): the next round lists the new file
    [ -n "$4" ] && [ "$4" != "$1" ] && return 5
    printf 'D %s %s %s\n' "$1" "$2" "$3"
    if [ "$2" = 0 ]; then cat <&3; else tail -c +"$(($2 + 1))" <&3; fi
    au_rc=$?
    printf '\n%s %s\n' "$T" "$au_rc"
    return 0
}

au_file() {  # send what is new in the file of W's line read (kind k); o: its new offset
    if [ "$o" = - ]; then
        o=0
        [ "$au_first" = 1 ] && [ "$SKIP" = 1 ] && [ "$k" = backup ] && o=$size
    fi
    case $name in
    *.gz)
        [ "$o" -gt 0 ] && return # sent whole (or left out) already
        case $DONE in *"$NL${name%.gz}$NL"*)
            o=$size # its plain copy was read to its end
            return
            ;;
        esac
        case $AU_RAW in *"$NL/${name%.gz}$NL"*) return ;; esac # still being compressed
        ;;
    *)
        if [ "$size" -lt "$o" ]; then
            printf 'T %s %s\n' "$ino" "$name"
            o=0
        fi
        if [ "$size" -le "$o" ]; then
            [ "$k" = backup ] && [ "$size" -gt 0 ] && au_done "$name"
            return
        fi
        ;;
    esac
    au_rc=1
    if { au_copy "$ino" "$o" "$name"; } 2>/dev/null 3<"$D/$name"; then
        if [ "$au_rc" = 0 ]; then
            o=$size
            [ "$k" = backup ] && au_done "$name"
        fi
    elif [ $? = 5 ]; then
        : # rotated under us: the next listing says so
    elif [ -e "$D/$name" ]; then
        printf 'X %s denied %s\n' "$ino" "$name"
    else
        printf 'X %s gone %s\n' "$ino" "$name"
    fi
    [ "$o" = "$size" ] || au_more=1 # not read to its end: tried again next round
}

au_send() {  # send what is new in the files of W: backups first, then the live files
    au_w= au_live=
    set -f
    IFS=$NL
    set -- $W
    unset IFS
    set +f
    for au_line; do
        au_fields "$au_line"
        if au_backup "$name"; then
            k=backup
            au_file
            au_w="$au_w$ino $size $o $fp $name$NL"
        else
            au_live="$au_live$au_line$NL"
        fi
    done
    set -f
    IFS=$NL
    set -- $au_live
    unset IFS
    set +f
    for au_line; do
        au_fields "$au_line"
        k=live
        au_file
        au_w="$au_w$ino $size $o $fp $name$NL"
    done
    W=$au_w
}

au_main() {
    LC_ALL=C
    export LC_ALL
    # what would change ls's columns or quote its names (GNU ls reads these)
    unset QUOTING_STYLE TIME_STYLE BLOCK_SIZE LS_BLOCK_SIZE BLOCKSIZE POSIXLY_CORRECT \
        CLICOLOR_FORCE LS_COLORS 2>/dev/null
    if ! command -v awk >/dev/null 2>&1; then
        echo "awk is not installed on the host (audittui's script needs it)" >&2
        return 3
    fi
    if [ -d "$P" ]; then
        D=$P
        F=
    elif [ -f "$P" ]; then
        F=${P##*/}
        D=${P%/*}
        [ "$D" = "$P" ] && D=.
        [ -n "$D" ] || D=/
    else
        au_why "$P"
        return 3
    fi
    if [ -n "$F" ]; then printf 'K file\n'; else printf 'K folder\n'; fi
    [ -n "$F" ] || SKIP=0 # a folder's backups are always read
    if [ -n "$F" ] && [ ! -r "$P" ]; then
        printf 'E denied %s\n' "$P"
        return 3
    fi
    au_first=1
    au_seen=
    au_said=
    au_more=1 # something may be left to send (else a round with the same listing sends none)
    while :; do
        if [ ! -d "$D" ]; then
            au_why "$D"
            return 3
        fi
        if [ ! -r "$D" ] || [ ! -x "$D" ]; then
            printf 'E denied %s\n' "$D"
            return 3
        fi
        AU_RAW=$(au_list)
        if [ "$AU_RAW" != "$au_seen" ] || [ "$au_first" = 1 ]; then
            au_forget # an unchanged listing (a quiet log) costs no awk and no dd
            au_listing
            if [ "$AU_U" != "$au_said" ]; then
                printf '%s' "$AU_U"
                au_said=$AU_U
            fi
            au_seen=$AU_RAW
            au_more=1
        fi
        if [ "$au_more" = 1 ]; then
            au_more=0
            au_send
        fi
        au_first=0
        printf 'R\n'
        [ "$ONCE" = 1 ] && return 0
        sleep 0.2 2>/dev/null || sleep 1
    done
}

au_main </dev/null
