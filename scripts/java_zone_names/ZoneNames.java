// Prints the English display names the running JVM gives each time zone: how TWS, a Java
// program, may name its login zone in the connection time of the API handshake.
//
// The first line is "#", the JVM's version, its time-zone database version and the locale
// providers in use. Then one line per zone id and English locale, tab-separated:
//   id, locale, short standard, short daylight, long standard, long daylight
// from TimeZone.getDisplayName(daylight, SHORT | LONG, locale). Run it once with
// -Djava.locale.providers=CLDR and once with =COMPAT (generate.py does both).

import java.time.zone.ZoneRulesProvider;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Locale;
import java.util.TimeZone;

public final class ZoneNames {
    public static void main(String[] args) {
        Locale[] english = Arrays.stream(Locale.getAvailableLocales())
                .filter(l -> l.getLanguage().equals("en"))
                .sorted(Comparator.comparing(Locale::toString))
                .toArray(Locale[]::new);
        String tzdb = ZoneRulesProvider.getVersions("UTC").lastKey();
        StringBuilder out = new StringBuilder();
        out.append("#\t").append(System.getProperty("java.version")).append('\t').append(tzdb)
                .append('\t').append(System.getProperty("java.locale.providers", "")).append('\n');
        String[] ids = TimeZone.getAvailableIDs();
        Arrays.sort(ids);
        for (String id : ids) {
            TimeZone tz = TimeZone.getTimeZone(id);
            for (Locale locale : english) {
                out.append(id).append('\t').append(locale.toLanguageTag());
                for (int style : new int[] {TimeZone.SHORT, TimeZone.LONG}) {
                    for (boolean daylight : new boolean[] {false, true}) {
                        out.append('\t').append(tz.getDisplayName(daylight, style, locale));
                    }
                }
                out.append('\n');
            }
        }
        System.out.print(out);
    }
}
