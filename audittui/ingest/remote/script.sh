# audittui's remote side: list an audit-log folder (or one file and its lumberjack backups)
# and send what is new in each file, framed, on standard output. POSIX sh, ls, tail and cat
# only; nothing is written on the host. The prelude before it sets P (the path), T (the frame
# token), ONCE (one round, then exit), SKIP (leave the backups present at the start unsent),
# BSTEM and BEXT (a file's backup name: BSTEM-<time>BEXT[.gz]), DONE (plain backups already
# read whole, one a line), O_<inode>=<bytes already sent> and N_<inode>=<its name> for every
# file known, and K (those inodes). Inode numbers are reused as soon as a file is deleted: a
# file's offset is kept only while its inode stays listed under a name it can have.
#
# Frames: "L" + "<inode> <size> <name>" lines + "M" (the listing, when it changed); "N <inode> <name>" (a new file under a known inode number);
# "D <inode> <offset> <name>", the bytes from there to the end, "\n<T> <status>";
# "T <inode> <name>" (truncated in place: sent again from 0); "X <inode> denied|gone <name>";
# "R" (a round sent); "K file|folder" (what P is); "E denied|nosuch <path>" (cannot go on).

au_ts='[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]-[0-9][0-9]-[0-9][0-9].[0-9][0-9][0-9]'

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

au_list() {  # "<inode> <size> <name>" for the regular files wanted
    ls -lniL -- "$D" 2>/dev/null | while read -r ino mode links uid gid size mon day tm name; do
        case $mode in -*) ;; *) continue ;; esac
        au_wanted "$name" && printf '%s %s %s\n' "$ino" "$size" "$name"
    done
}

au_same() {  # can the file named $1 at the last listing be the one named $2 now?
    [ "$1" = "$2" ] && return 0
    # only a live file renamed to a plain backup: lumberjack writes each .gz anew
    case $2 in *.gz) return 1 ;; esac
    au_backup "$2" && ! au_backup "$1"
}

au_print() {  # $1 inode, $2 size, $3 name: a plain file's first bytes unlike when first seen
    # mean another file under the same inode number (a fast rotation: the live file gzipped
    # and deleted, and a newer one given its number between two listings)
    case $DONE in *"
$3
"*) return ;; esac # a backup read whole: it no longer changes
    eval "au_f=\${F_$1-}"
    if [ -n "$au_f" ]; then
        au_fp=$(dd if="$D/$3" bs="${au_f%% *}" count=1 2>/dev/null | cksum)
        [ "$au_f" = "${au_f%% *} $au_fp" ] && return
        unset "O_$1" "F_$1"
        printf 'N %s %s\n' "$1" "$3"
    fi
    [ "$2" -gt 0 ] || return
    au_n=$2
    [ "$au_n" -gt 256 ] && au_n=256 # an event's first bytes: its auditID and time
    au_fp=$(dd if="$D/$3" bs="$au_n" count=1 2>/dev/null | cksum)
    eval "F_$1=\"\$au_n \$au_fp\""
}

au_forget() {  # offsets of files gone, or of an inode number now another file's, are dropped
    au_now=
    while read -r ino size name; do
        [ -n "$ino" ] || continue
        eval "n=\${N_$ino-}"
        if [ -n "$n" ] && ! au_same "$n" "$name"; then
            unset "O_$ino" "F_$ino"
        fi
        eval "N_$ino=\$name"
        case $name in *.gz) ;; *) au_print "$ino" "$size" "$name" ;; esac
        au_now="$au_now $ino "
    done <<AU_EOF
$L
AU_EOF
    for ino in $K; do
        case $au_now in *" $ino "*) ;; *) unset "O_$ino" "N_$ino" "F_$ino" ;; esac
    done
    K=$au_now
}

au_has() {  # is $1 in the listing?
    case "
$L
" in *" $1
"*) return 0 ;; esac
    return 1
}

au_done() {  # note that plain backup $1 was read to its end (its .gz is not needed)
    case $DONE in *"
$1
"*) return 0 ;; esac
    DONE="$DONE$1
"
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

au_send() {  # $1: backup or live: send what is new in those files of the listing
    au_phase=$1
    while read -r ino size name; do
        [ -n "$ino" ] || continue
        if au_backup "$name"; then k=backup; else k=live; fi
        [ "$k" = "$au_phase" ] || continue
        eval "o=\${O_$ino-}"
        if [ -z "$o" ]; then
            o=0
            [ "$au_first" = 1 ] && [ "$SKIP" = 1 ] && [ "$k" = backup ] && o=$size
            eval "O_$ino=\$o"
        fi
        case $name in
        *.gz)
            [ "$o" -gt 0 ] && continue # sent whole (or left out) already
            case $DONE in *"
${name%.gz}
"*)
                eval "O_$ino=\$size" # its plain copy was read to its end
                continue
                ;;
            esac
            au_has "${name%.gz}" && continue # still being compressed
            ;;
        *)
            if [ "$size" -lt "$o" ]; then
                printf 'T %s %s\n' "$ino" "$name"
                o=0
                eval "O_$ino=0"
            fi
            if [ "$size" -le "$o" ]; then
                [ "$k" = backup ] && [ "$size" -gt 0 ] && au_done "$name"
                continue
            fi
            ;;
        esac
        au_rc=1
        if { au_copy "$ino" "$o" "$name"; } 2>/dev/null 3<"$D/$name"; then
            if [ "$au_rc" = 0 ]; then
                eval "O_$ino=\$size"
                [ "$k" = backup ] && au_done "$name"
            fi
        elif [ $? = 5 ]; then
            : # rotated under us: the next listing says so
        elif [ -e "$D/$name" ]; then
            printf 'X %s denied %s\n' "$ino" "$name"
        else
            printf 'X %s gone %s\n' "$ino" "$name"
        fi
    done <<AU_EOF
$L
AU_EOF
}

au_main() {
    LC_ALL=C
    export LC_ALL
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
    au_prev=
    while :; do
        if [ ! -d "$D" ]; then
            au_why "$D"
            return 3
        fi
        if [ ! -r "$D" ] || [ ! -x "$D" ]; then
            printf 'E denied %s\n' "$D"
            return 3
        fi
        L=$(au_list)
        if [ "$L" != "$au_prev" ] || [ "$au_first" = 1 ]; then
            au_forget # an unchanged listing (a quiet log) costs no dd
            printf 'L\n%s\nM\n' "$L"
            au_prev=$L
        fi
        au_send backup
        au_send live
        au_first=0
        printf 'R\n'
        [ "$ONCE" = 1 ] && return 0
        sleep 0.2 2>/dev/null || sleep 1
    done
}

au_main </dev/null
